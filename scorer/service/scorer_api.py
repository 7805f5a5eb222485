"""The `rtscore.v1.Scorer` gRPC adapter: converts messages and delegates to the core."""

from __future__ import annotations

import grpc

from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc
from rtscore.errors import InvalidArgument
from scorer.bundle.plan import DensePlan, pick
from scorer.frame import FrameError, LeapFrame
from scorer.service.admin import AdminGuard
from scorer.service.calls import CallRecorder, handled
from scorer.service.canary import Canary
from scorer.service.core import ScorerCore
from scorer.service.dense_frames import has_dense, planned_block
from scorer.service.double_frames import encode_columns, encode_doubles
from scorer.service.frames import field_spec, to_leap_frame, to_wire_frame
from scorer.service.model import HostedModel


def model_info(hosted: HostedModel) -> scorer_pb2.ModelInfo:
    """A hosted model as the wire's `ModelInfo`."""
    m = hosted.model
    return scorer_pb2.ModelInfo(
        name=hosted.name,
        version=hosted.version,
        sha256=m.sha256,
        inputs=[field_spec(f) for f in m.input_schema],
        outputs=[field_spec(f) for f in m.output_schema],
        bundle_name=m.name,
        bundle_format=m.format,
        mleap_version=m.mleap_version,
        root_op=str(getattr(m.root_op, "op", m.root_op)),
        health="SERVING" if hosted.serving else "NOT_SERVING",
        path=hosted.path,
    )


class ScorerServicer(scorer_pb2_grpc.ScorerServicer):
    """rtscore's own scoring API."""

    def __init__(
        self, core: ScorerCore, recorder: CallRecorder | None = None, admin: AdminGuard | None = None
    ) -> None:
        self.core = core
        self.recorder = recorder
        self.admin = admin or AdminGuard(token=None, locked=False)

    @handled("Score")
    async def Score(  # noqa: N802 (gRPC method name)
        self, request: scorer_pb2.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ScoreResponse:
        """Score a frame."""
        target = self.core.table.resolve(request.model)
        wire = request.frame
        plan = target.plan
        if plan is not None and not (request.include_inputs or wire.columns):
            planned = await self._score_planned(target, plan, request, context)
            if planned is not None:
                return planned
        # a dense block is decoded and fitted as a whole; all-double columns by their recorded layout
        decoder = target.dense_frames if has_dense(wire) else target.double_frames
        frame: LeapFrame | None = decoder.decode(wire)
        left = context.time_remaining()  # None without a deadline
        if frame is None:
            frame = to_leap_frame(wire, target.inputs_by_name)
            out, hosted = await self.core.score(request.model, frame, deadline_left_s=left)
        else:  # the frame is already fitted to this version
            out, hosted = await self.core.score(
                request.model, frame, checked_for=target, deadline_left_s=left
            )
        if request.select:
            names = list(request.select)
        elif request.include_inputs:
            names = out.names
        else:
            names = hosted.output_names
        if names is not hosted.output_names or not out.has_all(hosted.output_set):
            for name in names:
                if not out.has(name):
                    raise FrameError(f"selected column {name!r} is not in the model's output")
        response = scorer_pb2.ScoreResponse(model=hosted.name, version=hosted.version)
        encoded = encode_doubles(out, names)
        if encoded is None:
            response.frame.CopyFrom(to_wire_frame(out, names))
        else:
            response.frame.MergeFromString(encoded)
        return response

    async def _score_planned(
        self,
        target: HostedModel,
        plan: DensePlan,
        request: scorer_pb2.ScoreRequest,
        context: grpc.aio.ServicerContext,
    ) -> scorer_pb2.ScoreResponse | None:
        """The reply when the request is a dense block of the model's inputs in its order asking for
        outputs only: scored straight through the classifier. None: the general path scores it."""
        select = request.select
        block = planned_block(request.frame, plan.names) if plan.outputs_all(select) else None
        if block is None:
            return None
        scores = await self.core.score_dense(target, plan, block, context.time_remaining())
        encoded = encode_columns(block.shape[0], pick(scores, select) if select else scores)
        if encoded is None:  # a plan's outputs are all doubles (see dense_plan): not reached
            return None
        response = scorer_pb2.ScoreResponse(model=target.name, version=target.version)
        response.frame.MergeFromString(encoded)
        return response

    @handled("GetModel")
    async def GetModel(  # noqa: N802 (gRPC method name)
        self, request: scorer_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ModelInfo:
        """Describe one hosted model."""
        return model_info(self.core.table.resolve(request.model))

    @handled("ListModels")
    async def ListModels(  # noqa: N802 (gRPC method name)
        self, request: scorer_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ListModelsResponse:
        """List hosted models."""
        return scorer_pb2.ListModelsResponse(models=[model_info(h) for h in self.core.table.models()])

    @handled("LoadModel")
    async def LoadModel(  # noqa: N802 (gRPC method name)
        self, request: scorer_pb2.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ModelInfo:
        """Load (or swap in) a bundle from a path (operator only when so configured)."""
        self.admin.check_caller(context, "LoadModel")
        if not request.path:
            raise InvalidArgument("LoadModel needs the path of a bundle")
        canary = None
        if request.HasField("canary_frame") != request.HasField("canary_expected"):
            raise InvalidArgument("a canary needs both canary_frame and canary_expected")
        self.admin.check_path(request.path)
        if request.HasField("canary_frame"):
            canary = Canary(
                to_leap_frame(request.canary_frame, {}), to_leap_frame(request.canary_expected, {})
            )
        hosted = await self.core.load(request.name, request.version, request.path, canary)
        return model_info(hosted)

    @handled("UnloadModel")
    async def UnloadModel(  # noqa: N802 (gRPC method name)
        self, request: scorer_pb2.UnloadModelRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.UnloadModelResponse:
        """Unload a model once its in-flight calls finish (operator only when so configured)."""
        self.admin.check_caller(context, "UnloadModel")
        hosted = await self.core.unload(request.model)
        return scorer_pb2.UnloadModelResponse(name=hosted.name, version=hosted.version)
