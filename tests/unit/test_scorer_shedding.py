"""Overload is refused, not queued: a call whose deadline cannot be met is refused at once with
RESOURCE_EXHAUSTED, counting the calls ahead of it; calls that can finish are served meanwhile."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest

from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc
from scorer.service.admission import AdmissionGate
from scorer.service.errors import OverloadError
from scorer.service.server import ScorerServer
from scorer.service.settings import ScorerSettings
from tests.unit.test_scorer_core import Loader, SumModel, wait_for
from tests.unit.test_scorer_grpc import wire_frame

REQUEST = scorer_pb2.ScoreRequest(model="slow", frame=wire_frame(a=[1.0], b=[2.0]))


def test_the_gate_refuses_calls_whose_deadline_cannot_cover_the_work_ahead() -> None:
    gate = AdmissionGate(8, deadline_margin_s=0.001, threads=2)
    gate.acquire(deadline_left_s=0.0105, expected_s=0.0095)  # alone: 9.5 + 1 ms fits in 10.5
    with pytest.raises(OverloadError, match=re.escape("deadline leaves 10.50 ms, it needs about 15.25 ms")):
        gate.acquire(deadline_left_s=0.0105, expected_s=0.0095)  # one ahead on two threads
    gate.acquire(deadline_left_s=None, expected_s=1.0)  # no deadline: only the in-flight bound applies
    assert (gate.in_flight, gate.refused_late) == (2, 1)


async def test_calls_that_cannot_finish_in_time_are_refused_at_once_and_the_rest_are_served() -> None:
    loader = Loader()
    loader.models["/slow"] = model = SumModel(0.0)
    # every transform takes 200 ms: the deadlines below sit 80-100 ms from the decision, so a stall of
    # the host does not turn a refusal into a deadline passed
    model.delay_s = 0.2
    settings = ScorerSettings(port=0, scoring_threads=1, canary_interval_s=3600, deadline_margin_ms=1.0)
    async with (
        ScorerServer(settings, loader) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        await server.core.load("slow", "v1", "/slow")
        stub = scorer_pb2_grpc.ScorerStub(channel)
        first = await stub.Score(REQUEST, timeout=5)  # no cost known yet: admitted, and measured
        assert list(first.frame.columns[0].doubles) == [3.0]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.Score(REQUEST, timeout=0.12)  # 120 ms cannot hold a 200 ms transform
        assert late.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "refused at once instead of answered late" in (late.value.details() or "")
        assert loop.time() - started < 0.12, "the refusal came only when the deadline had passed"
        # one call holds the only scoring thread: a second needs 200 + 200 ms, so 300 ms is refused
        model.gate.clear()
        held = asyncio.ensure_future(stub.Score(REQUEST, timeout=5))
        await wait_for(lambda: server.core.gate.in_flight == 1)
        with pytest.raises(grpc.aio.AioRpcError) as queued:
            await stub.Score(REQUEST, timeout=0.3)
        assert queued.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        patient = asyncio.ensure_future(stub.Score(REQUEST, timeout=5))
        await wait_for(lambda: server.core.gate.in_flight == 2)
        model.gate.set()
        served = await asyncio.gather(held, patient)
        assert [list(r.frame.columns[0].doubles) for r in served] == [[3.0], [3.0]]
        assert server.core.gate.refused_late == 2


async def test_with_shedding_off_a_late_call_runs_into_its_deadline() -> None:
    loader = Loader()
    loader.models["/slow"] = model = SumModel(0.0)
    model.delay_s = 0.05
    settings = ScorerSettings(port=0, canary_interval_s=3600, shed_by_deadline=False)
    async with (
        ScorerServer(settings, loader) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        await server.core.load("slow", "v1", "/slow")
        stub = scorer_pb2_grpc.ScorerStub(channel)
        await stub.Score(REQUEST, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.Score(REQUEST, timeout=0.03)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await wait_for(lambda: server.core.gate.in_flight == 0)  # the abandoned transform still ends
