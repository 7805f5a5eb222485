from protos.rtscore.v1 import frame_pb2 as _frame_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreRequest(_message.Message):
    __slots__ = ("model", "frame", "select", "include_inputs")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    SELECT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_INPUTS_FIELD_NUMBER: _ClassVar[int]
    model: str
    frame: _frame_pb2.Frame
    select: _containers.RepeatedScalarFieldContainer[str]
    include_inputs: bool
    def __init__(self, model: _Optional[str] = ..., frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., select: _Optional[_Iterable[str]] = ..., include_inputs: _Optional[bool] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("frame", "model", "version")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    frame: _frame_pb2.Frame
    model: str
    version: str
    def __init__(self, frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "sha256", "inputs", "outputs", "bundle_name", "bundle_format", "mleap_version", "root_op", "health", "path")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_NAME_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    MLEAP_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROOT_OP_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    sha256: str
    inputs: _containers.RepeatedCompositeFieldContainer[_frame_pb2.FieldSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[_frame_pb2.FieldSpec]
    bundle_name: str
    bundle_format: str
    mleap_version: str
    root_op: str
    health: str
    path: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[_frame_pb2.FieldSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[_frame_pb2.FieldSpec, _Mapping]]] = ..., bundle_name: _Optional[str] = ..., bundle_format: _Optional[str] = ..., mleap_version: _Optional[str] = ..., root_op: _Optional[str] = ..., health: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("name", "version", "path", "canary_frame", "canary_expected")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CANARY_FRAME_FIELD_NUMBER: _ClassVar[int]
    CANARY_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    path: str
    canary_frame: _frame_pb2.Frame
    canary_expected: _frame_pb2.Frame
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., path: _Optional[str] = ..., canary_frame: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ..., canary_expected: _Optional[_Union[_frame_pb2.Frame, _Mapping]] = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class UnloadModelResponse(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
