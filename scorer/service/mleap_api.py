"""MLeap's gRPC API (`ml.combust.mleap.pb.Mleap`) on the same core, so mleap-grpc-server clients work."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from protos.ml.bundle import bundle_pb2
from protos.ml.combust.mleap.pb import grpc_pb2_grpc, mleap_pb2
from rtscore.errors import InvalidArgument, RtscoreError
from scorer.frame import Field, LeapFrame
from scorer.service.admin import AdminGuard
from scorer.service.calls import CallRecorder, handled
from scorer.service.core import ScorerCore
from scorer.service.errors import Draining, ModelNotFound, OverloadError
from scorer.service.model import HostedModel

# MLeap's name for its JSON LeapFrame serialization; an empty format means the same.
JSON_FORMAT = "ml.combust.mleap.json"
_BASIC = {
    "boolean": bundle_pb2.BOOLEAN, "byte": bundle_pb2.BYTE, "short": bundle_pb2.SHORT, "int": bundle_pb2.INT,
    "long": bundle_pb2.LONG, "float": bundle_pb2.FLOAT, "double": bundle_pb2.DOUBLE,
    "string": bundle_pb2.STRING, "byte_string": bundle_pb2.BYTE_STRING,
}  # fmt: skip
_SHAPE = {"scalar": bundle_pb2.SCALAR, "list": bundle_pb2.LIST, "tensor": bundle_pb2.TENSOR}


def bundle_schema(fields: Sequence[Field]) -> bundle_pb2.Schema:
    """A LeapFrame schema as Bundle.ML's `Schema` message."""
    out = bundle_pb2.Schema()
    for f in fields:
        dt = f.dtype
        shape = bundle_pb2.DataShape(base=_SHAPE.get(dt.shape, bundle_pb2.SCALAR), is_nullable=dt.nullable)
        if dt.shape == "tensor" and dt.dimensions is not None:
            shape.tensor_shape.dimensions.extend(bundle_pb2.TensorDimension(size=d) for d in dt.dimensions)
        base = _BASIC.get(dt.base, bundle_pb2.UNDEFINED)
        out.fields.add(name=f.name, data_type=bundle_pb2.DataType(base=base, shape=shape))
    return out


def bundle_path(uri: str) -> str:
    """The local path a LoadModel `uri` names: a `file:` URI or a plain path."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive, not a URI
        raise InvalidArgument(f"model uri {uri!r}: only file: URIs and local paths can be loaded")
    return uri


def _model(hosted: HostedModel, config: mleap_pb2.ModelConfig | None = None) -> mleap_pb2.Model:
    return mleap_pb2.Model(name=hosted.name, uri=hosted.path, config=config)


def _read_frame(request: mleap_pb2.TransformFrameRequest) -> LeapFrame:
    if request.format not in ("", JSON_FORMAT):
        raise InvalidArgument(f"frame format {request.format!r} is not supported; use {JSON_FORMAT!r}")
    try:
        obj = json.loads(request.frame)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidArgument(f"frame is not valid JSON: {err}") from err
    return LeapFrame.from_mleap_json(obj)


def _selected(frame: LeapFrame, options: mleap_pb2.TransformOptions) -> LeapFrame:
    if not options.select:
        return frame
    if options.select_mode == mleap_pb2.SELECT_MODE_RELAXED:
        return frame.select([n for n in options.select if frame.has(n)])
    return frame.select(list(options.select))  # strict (MLeap's default): a missing column fails


class MleapServicer(grpc_pb2_grpc.MleapServicer):
    """MLeap's serving API: models by name, frames as MLeap JSON bytes."""

    def __init__(
        self, core: ScorerCore, recorder: CallRecorder | None = None, admin: AdminGuard | None = None
    ) -> None:
        self.core = core
        self.recorder = recorder
        self.admin = admin or AdminGuard(token=None, locked=False)

    @handled("mleap.LoadModel")
    async def LoadModel(self, request: mleap_pb2.LoadModelRequest, context: Any) -> mleap_pb2.Model:  # noqa: N802
        """Load (or swap in) a bundle from a file URI (operator only when so configured)."""
        self.admin.check_caller(context, "LoadModel")
        if not request.uri:
            raise InvalidArgument("LoadModel needs the uri of a bundle")
        path = bundle_path(request.uri)
        self.admin.check_path(path)
        hosted = await self.core.load(request.model_name, "", path)
        return _model(hosted, request.config)

    @handled("mleap.UnloadModel")
    async def UnloadModel(  # noqa: N802 (gRPC method name)
        self, request: mleap_pb2.UnloadModelRequest, context: Any
    ) -> mleap_pb2.Model:
        """Unload a model once its in-flight calls finish (operator only when so configured)."""
        self.admin.check_caller(context, "UnloadModel")
        return _model(await self.core.unload(request.model_name))

    @handled("mleap.GetModel")
    async def GetModel(self, request: mleap_pb2.GetModelRequest, context: Any) -> mleap_pb2.Model:  # noqa: N802
        """Describe a hosted model."""
        return _model(self.core.table.resolve(request.model_name))

    @handled("mleap.GetBundleMeta")
    async def GetBundleMeta(  # noqa: N802 (gRPC method name)
        self, request: mleap_pb2.GetBundleMetaRequest, context: Any
    ) -> mleap_pb2.BundleMeta:
        """Bundle info and input/output schemas of a hosted model."""
        m = self.core.table.resolve(request.model_name).model
        fmt = bundle_pb2.JSON if m.format == "json" else bundle_pb2.PROTOBUF
        return mleap_pb2.BundleMeta(
            bundle=bundle_pb2.Bundle(name=m.name, format=fmt, version=m.mleap_version),
            input_schema=bundle_schema(m.input_schema),
            output_schema=bundle_schema(m.output_schema),
        )

    @handled("mleap.Transform")
    async def Transform(  # noqa: N802 (gRPC method name)
        self, request: mleap_pb2.TransformFrameRequest, context: Any
    ) -> mleap_pb2.TransformFrameResponse:
        """Transform one MLeap JSON frame; like MLeap, a failed transform is reported in the reply."""
        frame = _read_frame(request)
        fmt = request.format or JSON_FORMAT
        try:
            left = context.time_remaining()
            out, _hosted = await self.core.score(request.model_name, frame, deadline_left_s=left)
            body = json.dumps(_selected(out, request.options).to_mleap_json()).encode()
        except (ModelNotFound, OverloadError, Draining):
            raise  # the call itself failed: a gRPC status, as mleap-grpc-server does
        except RtscoreError as err:  # the frame did not fit or the transform refused it
            return mleap_pb2.TransformFrameResponse(
                tag=request.tag, format=fmt, status=mleap_pb2.STATUS_ERROR, error=str(err)
            )
        return mleap_pb2.TransformFrameResponse(tag=request.tag, format=fmt, frame=body)
