"""Targets measured in alternating rounds: the rotating order, the merged run, each round's figures."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.rounds import alternate
from benchmarks.targets import ServerProcess

_IDLE = "import time; print('listening on 127.0.0.1:4000', flush=True); time.sleep(60)"


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Three idle processes standing for three targets."""
    started = [ServerProcess(name, [sys.executable, "-c", _IDLE], 30.0) for name in ("a", "b", "c")]
    try:
        for server in started:
            server.start()
        yield started
    finally:
        for server in started:
            server.stop()


def test_every_target_takes_every_round_in_a_rotating_order_and_its_rounds_make_one_run(
    servers: list[ServerProcess],
) -> None:
    order: list[tuple[str, int]] = []

    def load(server: ServerProcess, round_: int) -> RunResult:
        order.append((server.name, round_))
        recorder = LatencyRecorder()
        base = {"a": 0.001, "b": 0.002, "c": 0.003}[server.name] * (round_ + 1)  # round 2 twice as slow
        for i in range(100):
            recorder.record(i / 100, base)
        spec = LoadSpec(server.target, rate=100.0, duration=1.0, warmup=0.0)
        return RunResult(spec, recorder, 100, 1.0, {"p50": 0.0, "p99": 0.0, "max": 0.0})

    measured = alternate(servers, 2, load, first=1)

    assert order == [("b", 0), ("c", 0), ("a", 0), ("c", 1), ("a", 1), ("b", 1)]
    b = measured["b"]
    assert b.result.recorder.requests == 200
    assert b.result.window_s == 2.0
    assert [r["p50"] for r in b.by_round] == pytest.approx([2.0, 4.0], rel=0.01)
    assert b.calls == 200
    assert b.cpu_ms_per_call["total"] >= 0.0
