"""The pool passes the caller's trace context to the scorer: a gRPC server on port 0 that records each
Score call's metadata and serves health, standing in for a scorer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from protos.rtscore.v1 import frame_pb2, scorer_pb2
from scorer.client import ScorerPool, static_endpoints


class RecordingScorer:
    """Answers every Score with an empty frame and keeps the metadata it came with."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    async def score(
        self, request: scorer_pb2.ScoreRequest, context: grpc.aio.ServicerContext
    ) -> scorer_pb2.ScoreResponse:
        self.metadata.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        return scorer_pb2.ScoreResponse(model=request.model, version="1")


@pytest_asyncio.fixture(name="recorder")
async def recorder_fixture() -> AsyncIterator[tuple[RecordingScorer, str]]:
    """The recording scorer on a free port, `demo` SERVING."""
    recorder = RecordingScorer()
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        recorder.score,
        request_deserializer=scorer_pb2.ScoreRequest.FromString,
        response_serializer=scorer_pb2.ScoreResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("rtscore.v1.Scorer", {"Score": handler})]
    )
    health = HealthServicer()
    await health.set("demo", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield recorder, f"127.0.0.1:{port}"
    await server.stop(0)


async def test_the_callers_trace_context_reaches_the_scorer(recorder: tuple[RecordingScorer, str]) -> None:
    scorer, address = recorder
    span = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736, span_id=0x00F067AA0BA902B7, is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )  # fmt: skip
    async with ScorerPool(static_endpoints([address])) as pool:
        await pool.wait_ready("demo", timeout=5)
        with trace.use_span(NonRecordingSpan(span)):
            await pool.score("demo", frame_pb2.Frame(rows=1), timeout=2, metadata=[("x-request-id", "r1")])
        await pool.score("demo", frame_pb2.Frame(rows=1), timeout=2)
    traced, untraced = scorer.metadata
    assert traced["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert traced["x-request-id"] == "r1"
    assert "traceparent" not in untraced
