"""Targets measured in alternating rounds: the rotating order, the merged run, each round's figures."""

from __future__ import annotations

import pytest

from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.rounds import alternate, ratios_by_round, rounds_for, said_by_round, warmup_for
from benchmarks.server_cpu import ThreadCpu
from rtscore.errors import InvalidArgument


def test_every_target_takes_every_round_in_a_rotating_order_and_its_rounds_make_one_run() -> None:
    order: list[tuple[str, int]] = []
    spent = {"a": 0.0, "b": 0.0, "c": 0.0}  # CPU seconds of each target's one thread

    def load(name: str, round_: int) -> RunResult:
        order.append((name, round_))
        recorder = LatencyRecorder()
        base = {"a": 0.001, "b": 0.002, "c": 0.003}[name] * (round_ + 1)  # the second round twice as slow
        for i in range(100):
            recorder.record(i / 100, base)
        spent[name] += 0.05  # 0.5 ms a call
        spec = LoadSpec(f"127.0.0.1:{4000 + round_}", rate=100.0, duration=1.0, warmup=0.0)
        return RunResult(spec, recorder, 100, 1.0, {"p50": 0.0, "p99": 0.0, "max": 0.0})

    def cpu(name: str) -> ThreadCpu:
        return {(1, 1): ("event_loop", spent[name])}

    speeds: list[float] = []
    measured = alternate(["a", "b", "c"], 2, load, cpu, first=1, speeds=speeds)

    assert order == [("b", 0), ("c", 0), ("a", 0), ("c", 1), ("a", 1), ("b", 1)]
    b = measured["b"]
    assert (b.result.recorder.requests, b.result.window_s, b.calls) == (200, 2.0, 200)
    assert [r["p50"] for r in b.by_round] == pytest.approx([2.0, 4.0], rel=0.01)
    assert b.cpu_ms_per_call == {"event_loop": 0.5, "total": 0.5}  # over both rounds, nothing between
    assert len(speeds) == 2  # the machine's speed, taken as each round began
    assert all(ms > 0 for ms in speeds)


def test_two_runs_in_alternation_are_read_round_against_round() -> None:
    floor = [{"p50": 0.5, "p99": 2.0}, {"p50": 0.4, "p99": 1.0}, {"p50": 1.0, "p99": 4.0}]
    ours = [{"p50": 0.6, "p99": 2.4}, {"p50": 0.6, "p99": 2.0}, {"p50": 1.1, "p99": 4.4}]
    by_round = ratios_by_round(ours, floor)
    # a slow third round slows both alike: its ratio is like the first's
    assert by_round == {"p50": [1.2, 1.5, 1.1], "p50_median": 1.2, "p99": [1.2, 2.0, 1.1], "p99_median": 1.2}
    assert said_by_round(by_round) == "1.20x (1.10-1.50) / 1.20x (1.10-2.00)"
    assert ratios_by_round(ours[:1], floor[:1]) is None  # one round: nothing beyond the whole runs' ratio
    assert ratios_by_round(ours, floor[:2]) is None
    assert said_by_round(None) == "-"


def test_rounds_default_to_at_most_one_a_second_and_a_given_count_must_leave_a_second_each() -> None:
    assert rounds_for(None, 6, 60.0) == 6
    assert rounds_for(None, 6, 3.5) == 3  # a short run takes fewer rounds rather than being refused
    assert rounds_for(1, 6, 1.0) == 1
    assert rounds_for(4, 6, 10.0) == 4
    for given, seconds in ((0, 60.0), (-1, 60.0), (100, 60.0), (None, 0.5)):
        with pytest.raises(InvalidArgument, match="leave a second a round"):
            rounds_for(given, 6, seconds)


def test_a_later_round_warms_its_target_up_briefly_it_has_just_been_serving() -> None:
    assert [warmup_for(r, 3.0) for r in (0, 1, 5)] == [3.0, 0.5, 0.5]
    assert warmup_for(1, 0.2) == 0.2  # never longer than the first round's
