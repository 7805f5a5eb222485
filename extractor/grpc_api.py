"""The `rtscore.v1.Extractor` servicer: converts messages, delegates to the core, maps errors to statuses."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc

from extractor.core import ExtractorCore
from extractor.metrics import ExtractorMetrics
from protos.rtscore.v1 import extractor_pb2, extractor_pb2_grpc
from rtscore.errors import RtscoreError

log = logging.getLogger(__name__)
_TRACE_KEYS = frozenset(("traceparent", "tracestate", "baggage"))


def timing_metadata(timings: extractor_pb2.StageTimings) -> tuple[tuple[str, str], ...]:
    """The stage timings as trailing metadata, for harnesses that read no message bodies."""
    return (
        ("rtscore-features-ms", f"{timings.features_ms:.4f}"),
        ("rtscore-velocity-ms", f"{timings.velocity_ms:.4f}"),
        ("rtscore-score-ms", f"{timings.score_ms:.4f}"),
        ("rtscore-total-ms", f"{timings.total_ms:.4f}"),
    )


def _trace(context: grpc.aio.ServicerContext) -> Sequence[tuple[str, str]]:
    metadata = context.invocation_metadata() or ()
    return tuple((m.key, m.value) for m in metadata if m.key in _TRACE_KEYS)


class ExtractorServicer(extractor_pb2_grpc.ExtractorServicer):
    """Evaluate and EvaluateBatch over the core."""

    def __init__(self, core: ExtractorCore, metrics: ExtractorMetrics, default_timeout_s: float) -> None:
        self.core = core
        self.metrics = metrics
        self.default_timeout_s = default_timeout_s

    async def Evaluate(  # noqa: N802 (gRPC method name)
        self, request: extractor_pb2.Transaction, context: grpc.aio.ServicerContext
    ) -> extractor_pb2.Decision:
        """One transaction's decision; timings also in trailing metadata."""
        remaining = context.time_remaining()
        try:
            decision = await self.core.evaluate(
                request, remaining if remaining is not None else self.default_timeout_s, _trace(context)
            )
        except RtscoreError as err:
            self.metrics.failed(err.code.name)
            await context.abort(err.code, str(err))
        except Exception:
            log.exception("Evaluate failed")
            self.metrics.failed("INTERNAL")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error (logged by the extractor)")
        context.set_trailing_metadata(timing_metadata(decision.timings))
        return decision

    async def EvaluateBatch(  # noqa: N802 (gRPC method name)
        self, request: extractor_pb2.EvaluateBatchRequest, context: grpc.aio.ServicerContext
    ) -> extractor_pb2.EvaluateBatchResponse:
        """Decisions for several transactions, in request order."""
        remaining = context.time_remaining()
        try:
            decisions = await self.core.evaluate_batch(
                request.transactions,
                remaining if remaining is not None else self.default_timeout_s,
                _trace(context),
            )
        except RtscoreError as err:
            self.metrics.failed(err.code.name)
            await context.abort(err.code, str(err))
        except Exception:
            log.exception("EvaluateBatch failed")
            self.metrics.failed("INTERNAL")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error (logged by the extractor)")
        return extractor_pb2.EvaluateBatchResponse(decisions=decisions)
