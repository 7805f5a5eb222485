"""The pool's pieces of logic alone: power of two choices, the latency average, the hedge budget, the
running p95, health and ejections rebuilding pickers, joining and splitting frames, and bad settings."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest
import pytest_asyncio

from protos.rtscore.v1 import frame_pb2
from rtscore.errors import InvalidArgument, Unavailable
from scorer.client import PoolSettings, ScorerPool, static_endpoints
from scorer.client.balancer import Balancer
from scorer.client.endpoint import Endpoint
from scorer.client.errors import ScorerCallError
from scorer.client.frames import dense_frame, join_rows, layout, split_rows
from scorer.client.hedging import CallBudget, RunningQuantile
from scorer.client.picker import Picker
from scorer.client.telemetry import PoolTelemetry

SETTINGS = PoolSettings()


@pytest_asyncio.fixture(name="endpoints")
async def endpoints_fixture() -> AsyncIterator[list[Endpoint]]:
    """Three endpoints nobody calls (their channels never connect: nothing is sent)."""
    made = [Endpoint(f"127.0.0.1:{port}", SETTINGS, None, lambda *_: None) for port in (1, 2, 3)]
    yield made
    for endpoint in made:
        await endpoint.close()


async def test_equal_endpoints_are_picked_evenly_and_excluded_ones_never(endpoints: list[Endpoint]) -> None:
    picker = Picker(tuple(endpoints), SETTINGS.cost_tolerance)
    picks = Counter(picker.pick() for _ in range(6000))
    assert set(picks) == set(endpoints)
    for count in picks.values():
        assert abs(count - 2000) < 200
    excluded = Counter(picker.pick(exclude=endpoints[:2]) for _ in range(100))
    assert excluded == Counter({endpoints[2]: 100})
    assert picker.pick(exclude=endpoints) is None


async def test_a_clearly_costlier_endpoint_loses_every_comparison(endpoints: list[Endpoint]) -> None:
    slow, busy, fast = endpoints
    for _ in range(30):
        slow.observe(0.010)  # 10x the others' initial 1 ms, call after call
    busy.in_flight = 4  # 5x the cost of an idle one
    for pair in ((slow, fast), (busy, fast)):
        picker = Picker(pair, SETTINGS.cost_tolerance)
        assert {picker.pick() for _ in range(200)} == {fast}


async def test_one_slow_call_barely_moves_the_cost_but_a_slow_scorer_soon_shows(
    endpoints: list[Endpoint],
) -> None:
    endpoint = endpoints[0]
    for _ in range(20):
        endpoint.observe(0.001)
    endpoint.observe(0.050)  # one call that waited on a descheduled process
    assert endpoint.rtt_s < 0.001 * SETTINGS.cost_tolerance
    for _ in range(15):
        endpoint.observe(0.005)  # the scorer is now 5x slower on every call
    assert endpoint.rtt_s > 0.001 * SETTINGS.cost_tolerance * 1.5
    now = time.monotonic()
    assert endpoint.cost(now) == pytest.approx(endpoint.rtt_s, rel=0.01)
    later = now + 5 * SETTINGS.ewma_decay_s
    assert endpoint.cost(later) < endpoint.rtt_s * 0.01  # idle, its cost decays and it is tried again


async def test_a_fast_failure_is_charged_the_penalty_and_ejects_after_a_streak(
    endpoints: list[Endpoint],
) -> None:
    endpoint = endpoints[0]
    verdicts = [endpoint.observe_failure(0.0001) for _ in range(SETTINGS.eject_after_failures)]
    assert verdicts == [False] * (SETTINGS.eject_after_failures - 1) + [True]
    assert endpoint.rtt_s >= SETTINGS.failure_penalty_s * 0.5  # fast failures made it look slow
    endpoint.observe(0.001)
    assert endpoint.failures == 0


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED])
async def test_a_busy_scorers_refusals_steer_calls_away_but_never_eject_it(
    endpoints: list[Endpoint], code: grpc.StatusCode
) -> None:
    busy = endpoints[0]
    pool = ScorerPool(static_endpoints([busy.address]), SETTINGS)

    async def refuse(endpoint: Endpoint, seconds: float) -> None:
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "busy")

    for _ in range(3 * SETTINGS.eject_after_failures):
        with pytest.raises(grpc.aio.AioRpcError):
            await pool._attempt(busy, refuse, 1.0)
    assert busy.failures == 0
    assert not busy.ejected
    assert busy.rtt_s >= SETTINGS.failure_penalty_s * 0.5  # it looks slow, so the picker avoids it


def _refusals(code: grpc.StatusCode, count: int) -> tuple[list[str], Callable[[Endpoint, float], Any]]:
    """A `send` refusing its first `count` calls with `code`, then answering; and who it was sent to."""
    sent: list[str] = []

    async def send(endpoint: Endpoint, seconds: float) -> str:
        sent.append(endpoint.address)
        if len(sent) <= count:
            raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "busy")
        return "scored"

    return sent, send


async def _one_ready_of_two(pool: ScorerPool, monkeypatch: pytest.MonkeyPatch, both: bool = False) -> str:
    """Start `pool` over two endpoints of which the first serves "m" (the second too with `both`); the
    first's address."""
    monkeypatch.setattr(Endpoint, "watch", lambda self, model: None)  # health is fed by hand below
    await pool.start()
    balancer = pool._started()
    await balancer.membership_known()
    balancer.want("m")
    one, two = balancer.endpoints.values()
    one._set("m", True, "SERVING")
    two._set("m", both, "SERVING" if both else "NOT_SERVING")
    return one.address


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED])
async def test_a_busy_scorer_is_asked_again_after_a_backoff_while_the_deadline_and_budget_allow(
    monkeypatch: pytest.MonkeyPatch, code: grpc.StatusCode
) -> None:
    settings = PoolSettings(busy_backoff_s=0.01)
    pool = ScorerPool(static_endpoints(["127.0.0.1:1", "127.0.0.1:2"]), settings)
    try:
        ready = await _one_ready_of_two(pool, monkeypatch)
        sent, send = _refusals(code, 3)  # more refusals than max_attempts: a busy refusal is no failure
        began = time.monotonic()
        result, endpoint, attempts, _ = await pool._call("m", send, 1.0)
        waited = time.monotonic() - began
        assert (result, endpoint.address, attempts) == ("scored", ready, 4)
        assert sent == [ready] * 4
        assert waited >= 0.5 * (0.01 + 0.02 + 0.04)  # three doubling backoffs, jittered to half at most

        sent, send = _refusals(code, 1000)  # busy throughout: the backoffs end with the deadline
        began = time.monotonic()
        with pytest.raises(Unavailable, match=f"every scorer ready for 'm' is busy; the last: {ready}"):
            await pool._call("m", send, 0.3)
        assert time.monotonic() - began < 0.45  # no backoff past the deadline (plus a busy host's stall)
        assert 3 <= len(sent) <= 7

        sent, send = _refusals(code, 1)  # no time left for a backoff: failed at once, saying why
        with pytest.raises(Unavailable, match=f"busy; the last: {ready}: {code.name}"):
            await pool._call("m", send, 0.008)
        assert sent == [ready]

        sent, send = _refusals(grpc.StatusCode.UNAVAILABLE, 1)  # a broken scorer is not asked again
        with pytest.raises(Unavailable, match=f"no other scorer ready for 'm' after {ready}: UNAVAILABLE"):
            await pool._call("m", send, 1.0)
        assert sent == [ready]
    finally:
        await pool.close()


async def test_a_busy_refusal_goes_to_another_ready_scorer_at_once_and_retries_keep_to_their_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = PoolSettings(busy_backoff_s=0.5, busy_retry_share=0.01)
    pool = ScorerPool(static_endpoints(["127.0.0.1:1", "127.0.0.1:2"]), settings)
    try:
        await _one_ready_of_two(pool, monkeypatch, both=True)
        sent, send = _refusals(grpc.StatusCode.RESOURCE_EXHAUSTED, 1)
        began = time.monotonic()
        result, _, attempts, _ = await pool._call("m", send, 1.0)
        assert (result, attempts, len(set(sent))) == ("scored", 2, 2)
        assert time.monotonic() - began < 0.2  # no backoff (0.25 s at least) while another was left to try

        pool._busy_retries.tokens = 0.0  # a lasting overload spent the budget
        sent, send = _refusals(grpc.StatusCode.RESOURCE_EXHAUSTED, 2)
        began = time.monotonic()
        with pytest.raises(Unavailable, match="is busy"):
            await pool._call("m", send, 5.0)  # time enough for backoffs: only the budget stops them
        assert len(sent) == 2  # both scorers, once each, and no wait for a third
        assert time.monotonic() - began < 0.2
    finally:
        await pool.close()


def _late_first(timeouts: list[float], sent: list[str] | None = None) -> Callable[[Endpoint, float], Any]:
    """A `send` whose first call outlasts any deadline (answered DEADLINE_EXCEEDED when it passes) and
    whose later ones answer; each call's deadline goes to `timeouts`, its endpoint to `sent`."""

    async def send(endpoint: Endpoint, seconds: float) -> str:
        timeouts.append(seconds)
        if sent is not None:
            sent.append(endpoint.address)
        if len(timeouts) == 1:
            await asyncio.sleep(seconds)
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(), "late"
            )
        return "scored"

    return send


async def test_an_attempt_past_its_own_deadline_goes_to_another_scorer_within_the_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = ScorerPool(static_endpoints(["127.0.0.1:1", "127.0.0.1:2"]), PoolSettings(attempt_timeout_s=0.02))
    try:
        await _one_ready_of_two(pool, monkeypatch, both=True)
        timeouts: list[float] = []
        sent: list[str] = []
        result, _, attempts, _ = await pool._call("m", _late_first(timeouts, sent), 1.0)
        assert (result, attempts, len(set(sent))) == ("scored", 2, 2)  # the second on the other scorer
        assert timeouts == [0.02, 0.02]  # each attempt's own deadline, within the call's 1 s

        timeouts = []  # the call's deadline is the nearer one: its passing ends the call
        with pytest.raises(ScorerCallError, match="DEADLINE_EXCEEDED"):
            await pool._call("m", _late_first(timeouts), 0.01)
        assert len(timeouts) == 1
        assert timeouts[0] <= 0.01
    finally:
        await pool.close()

    pool = ScorerPool(static_endpoints(["127.0.0.1:1", "127.0.0.1:2"]), PoolSettings())
    try:  # no attempt deadline: an attempt may take the call's, and is not retried after it
        await _one_ready_of_two(pool, monkeypatch, both=True)
        timeouts = []
        with pytest.raises(ScorerCallError, match="DEADLINE_EXCEEDED"):
            await pool._call("m", _late_first(timeouts), 0.05)
        assert len(timeouts) == 1
        assert timeouts[0] == pytest.approx(0.05, abs=0.01)
    finally:
        await pool.close()


def test_hedges_stay_within_their_share() -> None:
    budget = CallBudget(0.05, burst=10)
    granted = 0
    for _ in range(1000):
        budget.earn()
        granted += budget.spend()
    assert 45 <= granted <= 51  # 5% of the calls, plus the token it starts with
    assert not CallBudget(0.0).spend()


def test_running_quantile_follows_recent_latencies() -> None:
    quantile = RunningQuantile(0.95, size=200, initial_s=0.5)
    for i in range(400):
        quantile.record(0.001 * (i % 100 + 1))
    assert quantile.value == pytest.approx(0.096, abs=0.002)


def test_frames_join_into_one_batch_and_split_back_per_caller() -> None:
    doubles = frame_pb2.COLUMN_TYPE_DOUBLE
    frames = [
        frame_pb2.Frame(rows=1, columns=[
            frame_pb2.Column(name="a", type=doubles, doubles=[float(i)]),
            frame_pb2.Column(name="b", type=doubles, doubles=[float(-i)]),
        ])
        for i in range(5)
    ]  # fmt: skip
    assert len({layout(f) for f in frames}) == 1
    columnar = join_rows(frames, dense=False)
    assert columnar.rows == 5
    assert list(columnar.columns[0].doubles) == [0.0, 1.0, 2.0, 3.0, 4.0]
    dense = join_rows(frames, dense=True)
    assert list(dense.dense.names) == ["a", "b"]
    values = np.frombuffer(dense.dense.values, dtype="<f8").reshape(5, 2)
    np.testing.assert_array_equal(values, [[i, -i] for i in range(5)])
    assert dense == dense_frame(["a", "b"], [[float(i), float(-i)] for i in range(5)])
    for original, part in zip(frames, split_rows(columnar, [1] * 5), strict=True):
        assert part == original
    halves = split_rows(dense, [2, 3])
    assert [p.rows for p in halves] == [2, 3]
    assert halves[1].dense.values == dense.dense.values[32:]


def test_settings_and_endpoints_that_cannot_work_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="batch_wait_s"):
        PoolSettings(batch_wait_s=0.001)
    with pytest.raises(InvalidArgument, match="max_attempts"):
        PoolSettings(max_attempts=0)
    with pytest.raises(InvalidArgument, match="HOST:PORT"):
        static_endpoints("127.0.0.1:1,nohost")
    assert static_endpoints("127.0.0.1:1, 127.0.0.1:2").addresses == ["127.0.0.1:1", "127.0.0.1:2"]


async def test_several_connections_per_address_are_endpoints_of_their_own_and_retries_leave_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Endpoint, "watch", lambda self, model: None)  # health is fed by hand below
    balancer = Balancer(PoolSettings(connections_per_endpoint=3), None, PoolTelemetry())
    balancer.set_endpoints(["127.0.0.1:1", "127.0.0.1:2"])
    balancer.want("m")
    assert sorted(balancer.endpoints) == [f"127.0.0.1:{p}#{i}" for p in (1, 2) for i in range(3)]
    assert len({id(e.channel) for e in balancer.endpoints.values()}) == 6
    for endpoint in balancer.endpoints.values():
        endpoint._set("m", True, "SERVING")
    picker = balancer.pickers["m"]
    assert len(picker) == 6
    first = balancer.endpoints["127.0.0.1:1#0"]
    # after a failure on one connection of :1, the retry goes to :2 while :2 has a ready connection
    assert {picker.pick(exclude=[first]).address for _ in range(200)} == {"127.0.0.1:2"}  # type: ignore[union-attr]
    others = [e for e in picker.endpoints if e.address == "127.0.0.1:2"]
    assert {picker.pick(exclude=[first, *others]) for _ in range(200)} == {
        balancer.endpoints["127.0.0.1:1#1"], balancer.endpoints["127.0.0.1:1#2"]
    }  # fmt: skip
    gone = balancer.set_endpoints(["127.0.0.1:2"])
    assert {e.key for e in gone} == {"127.0.0.1:1#0", "127.0.0.1:1#1", "127.0.0.1:1#2"}
    assert sorted(balancer.endpoints) == ["127.0.0.1:2#0", "127.0.0.1:2#1", "127.0.0.1:2#2"]
    for endpoint in [*gone, *balancer.close()]:
        await endpoint.close()


async def test_health_and_ejection_rebuild_the_picker_and_ejected_endpoints_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Endpoint, "watch", lambda self, model: None)  # health is fed by hand below
    settings = PoolSettings(eject_base_s=0.05, max_ejected_share=0.5)
    balancer = Balancer(settings, None, PoolTelemetry())
    balancer.set_endpoints(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
    ready = balancer.want("m")
    one, two, three = balancer.endpoints.values()
    assert not ready.is_set()
    for endpoint in (one, two, three):
        endpoint._set("m", True, "SERVING")
    picker = balancer.pickers["m"]
    assert ready.is_set()
    assert set(picker.endpoints) == {one, two, three}
    two._set("m", False, "NOT_SERVING")
    assert set(balancer.pickers["m"].endpoints) == {one, three}
    assert set(picker.endpoints) == {one, two, three}  # a picker in use never changes under a call
    balancer.failed(one)
    balancer.failed(three)  # a second ejection would leave too little: refused
    assert set(balancer.pickers["m"].endpoints) == {three}
    await asyncio.sleep(0.2)
    assert set(balancer.pickers["m"].endpoints) == {one, three}
    assert balancer.telemetry.ejections == 1
    for endpoint in balancer.close():
        await endpoint.close()
