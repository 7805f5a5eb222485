"""Overload is refused by gRPC's core before Python pays for it: calls the event loop has not taken yet
queue in the core only up to `max_pending_calls`, and the rest are refused at once, even while the loop
is too busy to run at all."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future

import grpc
import pytest
from pydantic import ValidationError

from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc
from scorer.service.admission import pending_call_options
from scorer.service.server import ScorerServer
from scorer.service.settings import ScorerSettings
from tests.unit.test_scorer_core import Loader, SumModel
from tests.unit.test_scorer_grpc import wire_frame

REQUEST = scorer_pb2.ScoreRequest(model="sum", frame=wire_frame(a=[1.0], b=[2.0]))
BURST = 40
LOOP_BLOCKED_S = 0.6


def test_pending_limits_become_the_cores_channel_arguments() -> None:
    assert pending_call_options(16, 4) == [
        ("grpc.server.max_pending_requests", 4),
        ("grpc.server.max_pending_requests_hard_limit", 16),
    ]
    assert pending_call_options(0, 4) == []  # off: the core's own limits (1,000 and 3,000) apply
    with pytest.raises(ValueError, match="soft limit 9 exceeds the pending-call bound 8"):
        pending_call_options(8, 9)
    with pytest.raises(ValidationError, match="must not exceed max_pending_calls"):
        ScorerSettings(max_pending_calls=8, pending_calls_soft_limit=9)
    assert ScorerSettings(max_pending_calls=0, pending_calls_soft_limit=9).max_pending_calls == 0
    # the default soft limit (16) follows a lower bound given alone; one given is kept
    assert ScorerSettings().pending_calls_soft_limit == 16
    assert ScorerSettings(max_pending_calls=8).pending_calls_soft_limit == 8
    assert ScorerSettings(max_pending_calls=8, pending_calls_soft_limit=2).pending_calls_soft_limit == 2
    assert ScorerSettings(max_pending_calls=0).pending_calls_soft_limit == 16  # no bound: left alone


class Burst:
    """Calls sent together from gRPC's own threads (a sync channel), each with the time it ended."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = scorer_pb2_grpc.ScorerStub(self.channel)
        self.ended: dict[int, float] = {}
        self._lock = threading.Lock()

    def send(self, count: int) -> list[Future[scorer_pb2.ScoreResponse]]:
        calls = []
        for i in range(count):
            call = self.stub.Score.future(REQUEST, timeout=10)
            call.add_done_callback(lambda _, i=i: self._ended(i))
            calls.append(call)
        return calls

    def _ended(self, index: int) -> None:
        with self._lock:
            self.ended[index] = time.monotonic()


def outcome(call: Future[scorer_pb2.ScoreResponse]) -> grpc.StatusCode:
    """The call's status once it has ended."""
    try:
        call.result(timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def burst_while_the_loop_is_blocked(
    settings: ScorerSettings,
) -> tuple[list[grpc.StatusCode], Burst, float]:
    """Send BURST calls, block the server's event loop for LOOP_BLOCKED_S, then collect every outcome;
    also returns when the loop ran again."""
    loader = Loader()
    loader.models["/sum"] = SumModel(0.0)
    async with ScorerServer(settings, loader) as server:
        await server.core.load("sum", "v1", "/sum")
        burst = Burst(f"127.0.0.1:{server.port}")
        try:
            first = await asyncio.to_thread(burst.stub.Score, REQUEST, timeout=5)
            assert first.frame.columns[0].doubles == [3.0]
            calls = burst.send(BURST)
            # The server shares this loop: while it sleeps, only gRPC's core threads run.
            time.sleep(LOOP_BLOCKED_S)  # noqa: ASYNC251 (blocking the loop is the point)
            woke = time.monotonic()
            codes = await asyncio.to_thread(lambda: [outcome(call) for call in calls])
        finally:
            burst.channel.close()
    return codes, burst, woke


async def test_calls_past_the_pending_bound_are_refused_by_the_core_while_the_loop_is_busy() -> None:
    settings = ScorerSettings(port=0, canary_interval_s=3600, max_pending_calls=4, pending_calls_soft_limit=4)
    codes, burst, woke = await burst_while_the_loop_is_blocked(settings)
    served = [i for i, code in enumerate(codes) if code == grpc.StatusCode.OK]
    refused = [i for i, code in enumerate(codes) if code == grpc.StatusCode.CANCELLED]
    assert len(served) + len(refused) == BURST, f"only OK or CANCELLED expected, got {set(codes)}"
    # the one call the loop had asked for, the four pending ones, and a few the loop took on waking
    assert 1 <= len(served) <= 8, f"{len(served)} of {BURST} served past a bound of 4 pending calls"
    # every refusal was answered while the loop still slept: no Python ran for it
    late = [i for i in refused if burst.ended[i] >= woke]
    assert not late, f"{len(late)} refusals waited for the event loop"


async def test_without_the_bound_the_same_burst_waits_for_the_loop_and_is_served() -> None:
    settings = ScorerSettings(port=0, canary_interval_s=3600, max_pending_calls=0)
    codes, burst, woke = await burst_while_the_loop_is_blocked(settings)
    assert codes == [grpc.StatusCode.OK] * BURST
    assert min(burst.ended.values()) >= woke, "a call was answered while the loop could not run"
