"""`rtscore bench scorer`'s own arithmetic: CPU per call by thread role, memory of a process tree."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.scorer_bench import _ladder, tree_memory
from benchmarks.scorer_figures import floor_ratios, highest_held_rates
from benchmarks.server_cpu import _role, cpu_per_call, thread_cpu


def test_cpu_per_call_splits_the_servers_cpu_by_thread_role() -> None:
    before = {(1, 1): ("event_loop", 1.0), (1, 2): ("scoring", 0.5), (1, 3): ("grpc", 0.0)}
    after = {
        (1, 1): ("event_loop", 2.0),
        (1, 2): ("scoring", 1.0),
        (1, 3): ("grpc", 0.1),
        (1, 4): ("other", 0.4),
    }

    per_call = cpu_per_call(before, after, calls=1000)

    assert per_call == {"event_loop": 1.0, "grpc": 0.1, "other": 0.4, "scoring": 0.5, "total": 2.0}


def test_threads_are_told_apart_by_their_os_names() -> None:
    assert _role(10, 10, "rtscore") == "event_loop"
    assert _role(10, 11, "rtscore-score") == "scoring"
    assert _role(10, 12, "event_engine") == "grpc"
    assert _role(10, 13, "rtscore") == "other"


def test_a_running_process_reports_its_threads_and_memory() -> None:
    code = (
        "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start();"
        " print('ready', flush=True)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code + "; time.sleep(30)"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        threads = thread_cpu(child.pid)
        memory = tree_memory(child.pid)
    finally:
        child.kill()
        child.communicate()

    roles = sorted(role for (pid, _tid), (role, _cpu) in threads.items() if pid == child.pid)
    assert roles == ["event_loop", "other"]
    assert memory["processes"] == 1
    assert 0 < memory["workers_uss_mb"] <= memory["workers_pss_mb"] <= memory["workers_rss_mb"]


def test_the_ladder_climbs_in_quarters_to_the_top_rate() -> None:
    assert _ladder(2000) == (500, 1000, 1500, 2000)


def _run(name: str, rate: float, p50: float, p99: float, cpu: float, errors: int = 0) -> dict[str, object]:
    return {"name": name, "rate": rate, "latency_ms": {"p50": p50, "p99": p99},
            "server_cpu_ms": {"total": cpu}, "errors": {"CANCELLED": errors} if errors else {}}  # fmt: skip


def test_each_scorer_run_is_read_against_the_floor_of_as_many_processes_at_its_rate() -> None:
    runs = [
        _run("floor@500", 500, 0.5, 2.0, 0.40),
        _run("kernel-floor@500", 500, 0.6, 2.4, 0.50),
        _run("kernel-floor@1000", 1000, 0.6, 2.4, 0.50),  # one process: not rtscore-2's kernel floor
        _run("rtscore-1@500", 500, 0.65, 3.0, 0.55),
        _run("floor-2@1000", 1000, 0.4, 1.0, 0.30),
        _run("rtscore-2@1000", 1000, 0.6, 2.5, 0.50),
        _run("rtscore-2@2000", 2000, 0.9, 4.0, 0.45),  # no floor run at this rate: no ratio
    ]

    ratios = floor_ratios(runs, transform_avg_ms=0.12)

    assert ratios == [
        {"run": "rtscore-1@500", "over": "floor@500", "rate": 500, "p50": 1.3, "p99": 1.5,
         "extra_cpu_ms_per_call": 0.15, "beyond_transform_ms_per_call": 0.03,
         "by_round": None,
         "kernel_floor": {"p50": 1.083, "p99": 1.25, "extra_cpu_ms_per_call": 0.05, "by_round": None}},
        {"run": "rtscore-2@1000", "over": "floor-2@1000", "rate": 1000, "p50": 1.5, "p99": 2.5,
         "extra_cpu_ms_per_call": 0.2, "beyond_transform_ms_per_call": 0.08, "by_round": None,
         "kernel_floor": None},
    ]  # fmt: skip


def test_runs_measured_in_alternating_rounds_are_also_read_round_against_round() -> None:
    # fmt: off
    floor = {**_run("floor@500", 500, 0.5, 2.0, 0.40),
             "rounds_ms": [{"p50": 0.5, "p99": 2.0}, {"p50": 0.4, "p99": 1.0}, {"p50": 1.0, "p99": 4.0}]}
    ours = {**_run("rtscore-1@500", 500, 0.65, 3.0, 0.55),
            "rounds_ms": [{"p50": 0.6, "p99": 2.4}, {"p50": 0.6, "p99": 2.0}, {"p50": 1.1, "p99": 4.4}]}
    lone = {**_run("floor-2@1000", 1000, 0.4, 1.0, 0.3), "rounds_ms": [{"p50": 0.4, "p99": 1.0}]}
    other = {**_run("rtscore-2@1000", 1000, 0.6, 2.5, 0.5), "rounds_ms": [{"p50": 0.6, "p99": 2.5}]}
    # fmt: on

    one, two = floor_ratios([floor, ours, lone, other])

    # each round against the same round of the floor (benchmarks.rounds)
    assert one["by_round"]["p50"] == [1.2, 1.5, 1.1]
    assert one["by_round"]["p99_median"] == 1.2
    assert two["by_round"] is None  # one round each: nothing more than the whole runs' ratio


def test_the_highest_held_rate_needs_p99_within_10_ms_and_no_errors() -> None:
    runs = [
        _run("floor-2@750", 750, 0.5, 2.0, 0.4),
        _run("floor-2@1500", 1500, 0.5, 9.9, 0.4),
        _run("floor-2@2250", 2250, 0.5, 12.0, 0.4),
        _run("rtscore-2@750", 750, 0.5, 3.0, 0.4),
        _run("rtscore-2@1500", 1500, 0.5, 4.0, 0.4, errors=3),
        _run("rtscore-3@750", 750, 0.5, 30.0, 0.4),
    ]

    assert highest_held_rates(runs) == {"floor-2": 1500, "rtscore-2": 750, "rtscore-3": None}
