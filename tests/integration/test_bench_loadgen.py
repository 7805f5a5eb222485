"""The load generator against real gRPC servers whose latency and failures are known in advance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from benchmarks.frames import score_requests
from benchmarks.loadgen import LoadSpec, RunResult, run_load
from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc

FRAME = {"schema": {"fields": [{"name": "amount", "type": "double"}]}, "rows": [[1.0], [2.0]]}
REQUESTS = score_requests(FRAME, "m", 1)


class SleepingScorer(scorer_pb2_grpc.ScorerServicer):
    """Answers every call after `delay_s`."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def Score(self, request: scorer_pb2.ScoreRequest, context: Any) -> scorer_pb2.ScoreResponse:  # noqa: N802
        await asyncio.sleep(self.delay_s)
        return scorer_pb2.ScoreResponse(model=request.model)


class StallingScorer(scorer_pb2_grpc.ScorerServicer):
    """Answers at once, except that it freezes for `stall_s` once, `stall_after_s` after its first call."""

    def __init__(self, stall_after_s: float, stall_s: float) -> None:
        self.stall_after_s, self.stall_s = stall_after_s, stall_s
        self.first_call: float | None = None
        self.stall_until = 0.0

    async def Score(self, request: scorer_pb2.ScoreRequest, context: Any) -> scorer_pb2.ScoreResponse:  # noqa: N802
        now = time.perf_counter()
        self.first_call = self.first_call or now
        if not self.stall_until and now - self.first_call >= self.stall_after_s:
            self.stall_until = now + self.stall_s
        # A frozen server answers nothing until the freeze ends, including calls that arrive during it.
        await asyncio.sleep(max(0.0, self.stall_until - now))
        return scorer_pb2.ScoreResponse(model=request.model)


class HalfFailingScorer(scorer_pb2_grpc.ScorerServicer):
    """Fails every second call after 300 ms with RESOURCE_EXHAUSTED; answers the others in 2 ms."""

    def __init__(self) -> None:
        self.calls = 0

    async def Score(self, request: scorer_pb2.ScoreRequest, context: Any) -> scorer_pb2.ScoreResponse:  # noqa: N802
        self.calls += 1
        if self.calls % 2:
            await asyncio.sleep(0.3)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
        await asyncio.sleep(0.002)
        return scorer_pb2.ScoreResponse(model=request.model)


async def _serve(servicer: scorer_pb2_grpc.ScorerServicer) -> AsyncIterator[str]:
    server = grpc.aio.server()
    scorer_pb2_grpc.add_ScorerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture
async def sleeping_target() -> AsyncIterator[str]:
    async for target in _serve(SleepingScorer(0.050)):
        yield target


@pytest.fixture
async def stalling_target() -> AsyncIterator[str]:
    async for target in _serve(StallingScorer(stall_after_s=1.0, stall_s=1.0)):
        yield target


@pytest.fixture
async def half_failing_target() -> AsyncIterator[str]:
    async for target in _serve(HalfFailingScorer()):
        yield target


def _slow_calls(result: RunResult, seconds: float) -> int:
    return sum(
        1
        for latency, ok in zip(result.recorder.latency, result.recorder.ok, strict=True)
        if ok and latency >= seconds
    )


# Rates stay low so that client and server share one core comfortably even on a busy 2-core machine.


async def test_known_server_delay_shows_in_every_percentile(sleeping_target: str) -> None:
    spec = LoadSpec(sleeping_target, rate=50, arrivals="constant", duration=2.0, warmup=0.3)
    result = await run_load(spec, REQUESTS)
    summary = result.recorder.summary()
    assert summary is not None
    assert not result.recorder.errors
    # Never faster than the server's sleep, and not much slower in the middle of the distribution.
    assert result.recorder.histogram.get_min_value() >= 49_900
    assert 50.0 <= summary.p50 <= 80.0
    assert summary.p50 <= summary.p90 <= 120.0
    # The tail is left loose: on a busy shared machine the client's own scheduling shows up there.
    assert summary.p99 <= 250.0
    assert 90 <= result.sent <= 110


async def test_open_loop_charges_a_server_stall_to_every_request_it_delays(stalling_target: str) -> None:
    spec = LoadSpec(stalling_target, rate=100, arrivals="constant", duration=3.0, warmup=0.2)
    result = await run_load(spec, REQUESTS)
    summary = result.recorder.summary()
    assert summary is not None
    assert 900 <= summary.max <= 1500
    assert summary.p999 >= 900
    # Every request sent during the freeze waited for it: about 100 of them, half for over 0.5 s.
    assert _slow_calls(result, 0.5) >= 35
    assert summary.p50 < 200


async def test_closed_loop_sees_a_stall_only_once_per_caller(stalling_target: str) -> None:
    spec = LoadSpec(stalling_target, mode="closed", concurrency=1, duration=3.0, warmup=0.2)
    result = await run_load(spec, REQUESTS)
    summary = result.recorder.summary()
    assert summary is not None
    assert summary.max >= 900
    # The lone caller waited once; nobody else was sending, which is how closed loops hide stalls.
    assert _slow_calls(result, 0.9) == 1


async def test_failed_calls_count_as_errors_not_latency(half_failing_target: str) -> None:
    spec = LoadSpec(half_failing_target, rate=50, arrivals="constant", duration=2.0, warmup=0.2)
    result = await run_load(spec, REQUESTS)
    summary = result.recorder.summary()
    assert summary is not None
    failed = result.recorder.errors["RESOURCE_EXHAUSTED"]
    assert set(result.recorder.errors) == {"RESOURCE_EXHAUSTED"}
    assert abs(failed - result.sent / 2) <= 2
    assert result.recorder.histogram.get_total_count() + failed == result.sent
    # Failures take 300 ms, successes 2 ms: the distribution holds only the successes.
    assert summary.p50 < 150
    assert _slow_calls(result, 0.3) <= result.sent // 20


async def test_count_mode_sends_exactly_the_measured_count(sleeping_target: str) -> None:
    spec = LoadSpec(sleeping_target, mode="closed", concurrency=4, duration=None, count=50, warmup=0.1)
    result = await run_load(spec, REQUESTS)
    assert result.recorder.requests == 50
    assert result.achieved_rate > 0


class PeerCountingScorer(scorer_pb2_grpc.ScorerServicer):
    """Notes the client address of every call."""

    def __init__(self) -> None:
        self.peers: list[str] = []

    async def Score(self, request: scorer_pb2.ScoreRequest, context: Any) -> scorer_pb2.ScoreResponse:  # noqa: N802
        self.peers.append(context.peer())
        return scorer_pb2.ScoreResponse(model=request.model)


async def test_calls_are_spread_over_one_connection_per_channel() -> None:
    servicer = PeerCountingScorer()
    async for target in _serve(servicer):
        spec = LoadSpec(
            target, mode="closed", concurrency=4, channels=4, duration=None, count=200, warmup=0.0
        )
        result = await run_load(spec, REQUESTS)
    assert result.recorder.requests == 200
    calls_by_peer = {peer: servicer.peers.count(peer) for peer in set(servicer.peers)}
    assert len(calls_by_peer) == 4
    assert min(calls_by_peer.values()) >= 40
