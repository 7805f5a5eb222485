"""`rtscore bench scorer --quick` runs end to end: latency, CPU per call and memory of 1 and 2 workers,
each beside the transport floor of as many processes (and one worker beside the kernel floor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_run import rtscore

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(300)
def test_quick_scorer_bench_reports_both_worker_counts(tmp_path: Path) -> None:
    out = tmp_path / "scorer.json"
    done = rtscore("bench", "scorer", "--quick", "--json", str(out), timeout=270)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "two workers / one:" in done.stdout
    report = json.loads(out.read_text())
    names = [
        "floor@200",
        "kernel-floor@200",
        "rtscore-1@200",
        "floor-2@200",
        "floor-2@400",
        "rtscore-2@200",
        "rtscore-2@400",
    ]
    assert [run["name"] for run in report["runs"]] == names
    # every scorer run is read against the floor of as many processes at its rate
    over = [(r["run"], r["over"]) for r in report["scorer"]["over_floor"]]
    assert over == [
        ("rtscore-1@200", "floor@200"),
        ("rtscore-2@200", "floor-2@200"),
        ("rtscore-2@400", "floor-2@400"),
    ]
    held = {"floor", "kernel-floor", "rtscore-1", "floor-2", "rtscore-2"}
    assert set(report["scorer"]["highest_rate_p99_10ms"]) == held
    # one process is also read against the kernel floor: the floor plus the model's kernel on each call's
    # rows (its runs answered every call, so every request decoded as the plan's dense block)
    kernel = [r["kernel_floor"] for r in report["scorer"]["over_floor"]]
    assert kernel[0] is not None
    assert kernel[0]["p50"] > 0
    assert kernel[1:] == [None, None]
    assert "beyond served kernel" in done.stdout
    assert "extra cpu ms/call" in done.stdout
    transform = report["scorer"]["transform_ms"]
    assert 0 < transform["p50"] <= transform["p99"]
    for ratio in report["scorer"]["over_floor"]:
        extra = ratio["extra_cpu_ms_per_call"] - transform["avg"]
        assert ratio["beyond_transform_ms_per_call"] == pytest.approx(extra, abs=2e-3)
    for run in report["runs"]:
        assert run["requests"] > 0
        # A VM stall of ~20 ms can leave more calls pending than the scorer's bound admits, and gRPC's
        # core refuses those (CANCELLED): a rare refusal is the bound at work; anything else is a fault.
        assert set(run["errors"]) <= {"CANCELLED"}, run["errors"]
        assert sum(run["errors"].values()) <= 0.005 * run["requests"], run["errors"]
        assert run["server_cpu_ms"]["total"] > 0
        assert run["server_cpu_ms"]["event_loop"] > 0
    assert report["runs"][2]["client"]["channels"] == 1
    assert report["runs"][5]["client"]["channels"] == 8
    # one worker in two alternating rounds (--quick), each run's rounds kept; the ladder a round a rate
    assert [len(run["rounds_ms"]) for run in report["runs"]] == [2, 2, 2, 1, 1, 1, 1]
    assert len(report["python_loop_ms_by_round"]) == 2 + 2
    assert report["scorer"]["over_floor"][0]["by_round"]["p50_median"] > 0
    memory = report["scorer"]["memory"]
    assert memory["rtscore-1"]["processes"] == 1
    assert memory["rtscore-2"]["processes"] == 3
    assert memory["workers_ratio"] == pytest.approx(
        memory["rtscore-2"]["workers_pss_mb"] / memory["rtscore-1"]["workers_pss_mb"], abs=1e-3
    )
