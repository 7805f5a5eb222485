"""One pool call against real scorer processes: `rtscore score --scorers`, errors that pass through or
say why, deadlines and hedging around a stalled scorer, and micro-batches that give each caller its row."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from protos.rtscore.v1 import frame_pb2
from rtscore.errors import Unavailable
from scorer.bundle import load_bundle
from scorer.client import PoolSettings, ScorerCallError, ScorerPool, static_endpoints
from scorer.frame import LeapFrame
from tests.integration.test_scorer_pool import DEMO, DEMO_FRAME, Scorer
from tests.paths import ROOT

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Nothing listens on port 1: a pool member that refuses every connection.
DEAD = "127.0.0.1:1"
NAMES = ("demo:a", "demo:c", "demo:d")


@pytest.fixture(name="scorers", scope="module")
def scorers_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Scorer]]:
    """Two demo scorers started together."""
    cache = tmp_path_factory.mktemp("cache")
    started = [Scorer(name, cache) for name in ("one", "two")]
    try:
        for scorer in started:
            scorer.wait_started()
        yield started
    finally:
        for scorer in started:
            scorer.stop()


def one_row(values: tuple[float, float, float]) -> frame_pb2.Frame:
    """A one-row demo frame."""
    columns = [
        frame_pb2.Column(name=n, type=frame_pb2.COLUMN_TYPE_DOUBLE, doubles=[v])
        for n, v in zip(NAMES, values, strict=True)
    ]
    return frame_pb2.Frame(rows=1, columns=columns)


def rtscore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtscore.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


async def test_score_cli_through_a_pool_prints_what_one_target_prints(scorers: list[Scorer]) -> None:
    one, two = scorers
    pool = f"{DEAD},{one.target},{two.target}"
    frame = str(DEMO_FRAME)
    direct, pooled, ghost = await asyncio.gather(
        asyncio.to_thread(rtscore, "score", "--target", one.target, "--model", "demo", "--frame", frame),
        asyncio.to_thread(rtscore, "score", "--scorers", pool, "--model", "demo", "--frame", frame),
        asyncio.to_thread(
            rtscore, "score", "--scorers", f"{one.target},{two.target}", "--model", "ghost", "--frame", frame
        ),
    )
    assert direct.returncode == 0, direct.stderr
    assert pooled.returncode == 0, pooled.stderr
    assert pooled.stdout == direct.stdout
    assert json.loads(pooled.stdout)["schema"]["fields"][-1]["name"] == "demo:prediction"
    assert ghost.returncode == 1
    assert ghost.stdout == ""
    assert ghost.stderr.splitlines() == [
        f"rtscore score: NOT_FOUND: no scorer hosts 'ghost' ({one.target},{two.target})"
    ]


async def test_caller_errors_pass_through_and_unready_models_say_why(scorers: list[Scorer]) -> None:
    one, _ = scorers
    async with ScorerPool(static_endpoints([DEAD, one.target])) as pool:
        await pool.wait_ready("demo", timeout=10)
        wrong = frame_pb2.Frame(rows=1, columns=[frame_pb2.Column(name="demo:a", doubles=[1.0])])
        with pytest.raises(ScorerCallError) as refused:
            await pool.score("demo", wrong, timeout=2)
        assert refused.value.code.name == "INVALID_ARGUMENT"
        assert refused.value.endpoint == one.target
        with pytest.raises(Unavailable) as unready:
            await pool.wait_ready("ghost", timeout=0.5)
        message = str(unready.value)
        assert f"{one.target}: SERVICE_UNKNOWN" in message
        assert f"{DEAD}: health watch: UNAVAILABLE" in message
        stats = pool.stats()
    assert stats["retries"] == 0  # a caller's mistake is not retried elsewhere
    assert stats["pool"] == {one.target: 1}  # and the dead member never got a call


async def test_deadline_holds_and_hedges_answer_around_a_stalled_scorer(scorers: list[Scorer]) -> None:
    one, two = scorers
    frame = one_row((1.0, 2.0, 3.0))
    settings = PoolSettings(hedge=True, hedge_delay_s=0.02, hedge_max_share=1.0)
    # Which scorer a pool tries first is its own choice, and once the stalled one has cost it a hedge it
    # is avoided: so each round uses a pool with no history, made ready before the stall, and the rounds
    # go on until some call picked the stalled scorer first (each round: 3 concurrent calls over 2).
    rounds = 10
    async with contextlib.AsyncExitStack() as stack:
        alone = await stack.enter_async_context(ScorerPool(static_endpoints([two.target])))
        pools = [
            await stack.enter_async_context(ScorerPool(static_endpoints([one.target, two.target]), settings))
            for _ in range(rounds)
        ]
        await alone.wait_ready("demo", timeout=10)
        for pool in pools:
            await pool.wait_ready("demo", timeout=10)
        os.kill(two.proc.pid, signal.SIGSTOP)
        answers = []
        try:
            started = time.monotonic()
            with pytest.raises(ScorerCallError) as late:
                await alone.score("demo", frame, timeout=0.2)
            assert late.value.code.name == "DEADLINE_EXCEEDED"
            assert time.monotonic() - started < 1.0
            for hedged in pools:
                answers += await asyncio.gather(*(hedged.score("demo", frame, timeout=1.0) for _ in range(3)))
                if hedged.stats()["hedges"]:
                    break
        finally:
            os.kill(two.proc.pid, signal.SIGCONT)
        stats = hedged.stats()
    assert {a.endpoint for a in answers} == {one.target}
    assert stats["hedges"] >= 1
    assert stats["hedge_wins"] >= 1  # the stopped scorer never answers, so its hedged calls were won
    assert any(a.hedged for a in answers)


class Members:
    """A membership that drops a scorer when told to, as the registry's does when a scorer leaves."""

    def __init__(self, addresses: list[str]) -> None:
        self.description, self.problem, self.refused = "test members", "", False
        self.lists: asyncio.Queue[list[str]] = asyncio.Queue()
        self.lists.put_nowait(addresses)

    async def updates(self) -> AsyncIterator[list[str]]:
        while True:
            yield await self.lists.get()


async def test_calls_in_flight_on_a_scorer_that_leaves_the_membership_are_answered_by_another(
    scorers: list[Scorer],
) -> None:
    # The leaving scorer is SIGSTOPped, so calls sent to it are still in flight when its channel closes.
    one, two = scorers
    members = Members([one.target, two.target])
    frame = one_row((1.0, 2.0, 3.0))
    async with ScorerPool(members) as pool:
        await pool.wait_ready("demo", timeout=10)
        for _ in range(100):  # until both are ready and have answered
            if len({(await pool.score("demo", frame, timeout=5.0)).endpoint for _ in range(10)}) == 2:
                break
        os.kill(two.proc.pid, signal.SIGSTOP)
        try:
            calls = [asyncio.create_task(pool.score("demo", frame, timeout=5.0)) for _ in range(8)]
            await asyncio.sleep(0.2)
            members.lists.put_nowait([one.target])
            answers = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            os.kill(two.proc.pid, signal.SIGCONT)
        retries = pool.stats()["retries"]
    assert [getattr(a, "endpoint", repr(a)) for a in answers] == [one.target] * 8
    assert retries >= 1, "no call was in flight on the scorer that left: the test proves nothing"


async def test_a_pool_closed_while_a_stopped_scorer_leaves_it_closes_at_once(scorers: list[Scorer]) -> None:
    # The scorer is stopped right after the pool is ready, so its health watch may still be starting
    # and its endpoint slow to close when the pool closes: that close once swallowed the pool's cancel
    # of the membership task, and the pool waited for a membership change forever (1 round in 3 or so).
    one, two = scorers
    frame = one_row((1.0, 2.0, 3.0))
    closes = []
    for _ in range(6):
        members = Members([one.target, two.target])
        async with asyncio.timeout(60):
            async with ScorerPool(members) as pool:
                await pool.wait_ready("demo", timeout=10)
                os.kill(two.proc.pid, signal.SIGSTOP)
                try:
                    calls = [asyncio.create_task(pool.score("demo", frame, timeout=5.0)) for _ in range(8)]
                    await asyncio.sleep(0.2)
                    members.lists.put_nowait([one.target])
                    answers = await asyncio.gather(*calls)
                finally:
                    os.kill(two.proc.pid, signal.SIGCONT)
                closing = time.monotonic()
            closes.append(round(time.monotonic() - closing, 1))
        assert {a.endpoint for a in answers} == {one.target}
    assert max(closes) < 5.0, f"seconds each close took: {closes}"  # 0.0 each; 20 s and more when stuck


async def test_micro_batches_give_each_caller_its_own_row(scorers: list[Scorer]) -> None:
    rng = np.random.default_rng(3)
    rows = [(float(a), float(b), float(c)) for a, b, c in rng.normal(size=(40, 3))]
    leap = LeapFrame.from_mleap_json(
        {
            "schema": {"fields": [{"name": n, "type": "double"} for n in NAMES]},
            "rows": [list(r) for r in rows],
        }
    )
    expected = load_bundle(DEMO, cache=None).transform(leap).column("demo:prediction").tolist()
    settings = PoolSettings(batch=True, batch_max_rows=16)
    async with ScorerPool(static_endpoints([s.target for s in scorers]), settings) as pool:
        await pool.wait_ready("demo", timeout=10)
        answers = await asyncio.gather(*(pool.score("demo", one_row(r), timeout=2) for r in rows))
        stats = pool.stats()
    got = []
    for answer in answers:
        assert answer.response.frame.rows == 1
        column = next(c for c in answer.response.frame.columns if c.name == "demo:prediction")
        got.append(column.doubles[0])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert stats["batched_rows"] == 40
    batches = stats["batches"]
    assert isinstance(batches, int)
    assert batches <= 40 // 16 + 2


async def test_bench_run_through_a_pool_reports_calls_per_scorer(
    scorers: list[Scorer], tmp_path: Path
) -> None:
    targets = ",".join(s.target for s in scorers)
    out = tmp_path / "pool.json"
    run = await asyncio.to_thread(
        rtscore, "bench", "run", "--scorers", targets, "--model", "demo", "--frame", str(DEMO_FRAME),
        "--rate", "100", "--duration", "1", "--warmup", "0.2", "--json", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    record = json.loads(out.read_text())["runs"][0]
    assert record["errors"] == {}
    assert set(record["pool"]) == {s.target for s in scorers}
    assert sum(record["pool"].values()) >= record["requests"]  # warm-up calls count too
    assert record["retries"] == 0
    assert record["hedges"] == 0


async def test_bursts_refused_by_busy_scorers_are_answered_after_backoffs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # gRPC's core refuses (CANCELLED) calls past two that the event loop has not taken yet: a burst of 30
    # at once is mostly refused by both scorers, as a stalled loop's queue is on a busy host.
    cache = tmp_path_factory.mktemp("cache")
    bounded = [Scorer(n, cache, "--max-pending-calls", "2", "--pending-calls-soft-limit", "1") for n in "ab"]
    try:
        for scorer in bounded:
            scorer.wait_started()
        targets = [s.target for s in bounded]
        frame = one_row((1.0, 2.0, 3.0))
        outcomes = {}
        for share in (0.0, PoolSettings().busy_retry_share):
            async with ScorerPool(static_endpoints(targets), PoolSettings(busy_retry_share=share)) as pool:
                await pool.wait_ready("demo", timeout=10)
                results = []
                for _ in range(3):
                    burst = (pool.score("demo", frame, timeout=1.0) for _ in range(30))
                    results += await asyncio.gather(*burst, return_exceptions=True)
                    await asyncio.sleep(0.05)
                failed = [r for r in results if isinstance(r, BaseException)]
                outcomes[share] = (failed, pool.stats()["retries"])
    finally:
        for scorer in bounded:
            scorer.stop()
    unasked, asked = outcomes.values()
    assert unasked[0], "the bursts were not refused: nothing here tests asking a busy scorer again"
    assert all(isinstance(e, Unavailable) and "is busy" in str(e) for e in unasked[0])
    assert asked[0] == []  # asked again after backoffs, every call was answered
    assert asked[1] > unasked[1]
