from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Split(_message.Message):
    __slots__ = ("categorical", "continuous")
    class CategoricalSplit(_message.Message):
        __slots__ = ("feature_index", "is_left", "num_categories", "categories")
        FEATURE_INDEX_FIELD_NUMBER: _ClassVar[int]
        IS_LEFT_FIELD_NUMBER: _ClassVar[int]
        NUM_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
        CATEGORIES_FIELD_NUMBER: _ClassVar[int]
        feature_index: int
        is_left: bool
        num_categories: int
        categories: _containers.RepeatedScalarFieldContainer[float]
        def __init__(self, feature_index: _Optional[int] = ..., is_left: _Optional[bool] = ..., num_categories: _Optional[int] = ..., categories: _Optional[_Iterable[float]] = ...) -> None: ...
    class ContinuousSplit(_message.Message):
        __slots__ = ("feature_index", "threshold")
        FEATURE_INDEX_FIELD_NUMBER: _ClassVar[int]
        THRESHOLD_FIELD_NUMBER: _ClassVar[int]
        feature_index: int
        threshold: float
        def __init__(self, feature_index: _Optional[int] = ..., threshold: _Optional[float] = ...) -> None: ...
    CATEGORICAL_FIELD_NUMBER: _ClassVar[int]
    CONTINUOUS_FIELD_NUMBER: _ClassVar[int]
    categorical: Split.CategoricalSplit
    continuous: Split.ContinuousSplit
    def __init__(self, categorical: _Optional[_Union[Split.CategoricalSplit, _Mapping]] = ..., continuous: _Optional[_Union[Split.ContinuousSplit, _Mapping]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("internal", "leaf")
    class InternalNode(_message.Message):
        __slots__ = ("split",)
        SPLIT_FIELD_NUMBER: _ClassVar[int]
        split: Split
        def __init__(self, split: _Optional[_Union[Split, _Mapping]] = ...) -> None: ...
    class LeafNode(_message.Message):
        __slots__ = ("values",)
        VALUES_FIELD_NUMBER: _ClassVar[int]
        values: _containers.RepeatedScalarFieldContainer[float]
        def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    internal: Node.InternalNode
    leaf: Node.LeafNode
    def __init__(self, internal: _Optional[_Union[Node.InternalNode, _Mapping]] = ..., leaf: _Optional[_Union[Node.LeafNode, _Mapping]] = ...) -> None: ...
