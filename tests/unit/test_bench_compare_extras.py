"""bench compare's extra rate and 10 ms sweep, on a session whose loads are simulated."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.compare import FULL
from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.session import CompareSession


def simulated_session() -> tuple[CompareSession, list[tuple[str, float | None, int]]]:
    """A session with no server: `_load` records (target, rate, seed) and answers each call in a fixed
    time per target; rtscore-2 takes 0.9 ms below 2,000/s and 12 ms from there on."""
    session = CompareSession.__new__(CompareSession)
    session.plan = replace(FULL, rounds=3, extra_rates=(500.0,), sweep_steps=6, sweep_seconds=6.0)
    session.batch = 1
    calls: list[tuple[str, float | None, int]] = []
    fixed_s = {"floor": 0.0005, "mleap-served": 0.0012}

    def load(name: str, rate: float | None, seconds: float, warmup: float, seed: int) -> RunResult:
        calls.append((name, rate, seed))
        took = fixed_s.get(name) or (0.0009 if rate is None or rate < 2_000 else 0.012)
        recorder = LatencyRecorder()
        for i in range(200):
            recorder.record(i * seconds / 200, took)
        spec = LoadSpec("127.0.0.1:1", rate=rate or 0.0, duration=seconds, warmup=warmup, seed=seed)
        return RunResult(spec, recorder, 200, seconds, {"p50": 0.0, "p99": 0.0, "max": 0.0})

    session._load = load  # type: ignore[method-assign]
    return session, calls


def test_the_extra_rate_runs_its_targets_in_rotating_rounds_and_the_sweep_finds_the_knee() -> None:
    session, calls = simulated_session()
    note: dict[str, object] = {"one_caller_rate": {"rtscore-2": 1_000.0}}
    runs = session._rtscore_extras(["floor", "mleap-served", "rtscore-1", "rtscore-2"], 200.0, note)

    assert [c for c in calls if c[1] == 500.0] == [
        ("floor", 500.0, 0), ("mleap-served", 500.0, 0), ("rtscore-2", 500.0, 0),
        ("mleap-served", 500.0, 1), ("rtscore-2", 500.0, 1), ("floor", 500.0, 1),
        ("rtscore-2", 500.0, 2), ("floor", 500.0, 2), ("mleap-served", 500.0, 2),
    ]  # fmt: skip
    assert [r["name"] for r in runs] == [
        "floor@500", "mleap-served@500", "rtscore-2@500", "rtscore-2-p99-over-10ms@2847.9",
    ]  # fmt: skip
    for run in runs[:3]:
        assert (run["requests"], len(run["rounds_ms"])) == (600, 3)  # three rounds merged into one run
    # The sweep starts at 1.5x the larger of the common rate and a quarter of one caller's rate, steps
    # by 1.5x while p99 <= 10 ms, and stops at the first step past it.
    assert [c[1] for c in calls if c[1] != 500.0] == [375.0, 562.5, 843.8, 1265.7, 1898.6, 2847.9]
    assert note["rtscore_p99_10ms"] == {
        "target": "rtscore-2",
        "last_rate_under": 1898.6,
        "first_rate_over": 2847.9,
        "stopped_because": "p99 passed 10 ms",
    }
