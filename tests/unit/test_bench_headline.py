"""The headline ratios of a comparison: each rtscore run over floor and mleap-served at its own rate."""

from __future__ import annotations

from typing import Any

from benchmarks.headline import headline_ratios, headline_table


def _run(name: str, rate: float, p50: float, p99: float) -> dict[str, Any]:
    return {"name": name, "rate": rate, "latency_ms": {"avg": p50, "p50": p50, "p99": p99}}


def test_ratios_pair_runs_at_the_same_rate_and_skip_sweep_steps() -> None:
    runs = [
        _run("floor", 50, 0.5, 1.5),
        _run("mleap-served", 50, 2.0, 8.0),
        _run("before", 50, 40.0, 200.0),
        _run("rtscore-1", 50, 0.75, 3.0),
        _run("rtscore-2", 50, 1.0, 1.5),
        _run("floor@500", 500, 1.0, 2.0),
        _run("rtscore-2@500", 500, 1.5, 5.0),
        _run("rtscore-2-p99-over-10ms@1200", 1200, 6.0, 30.0),
        {"name": "mleap-jvm-inprocess", "rate": None, "latency_ms": {"avg": 1.5, "p50": 1.4, "p99": 2.5}},
    ]
    ratios = {(r["run"], r["over"]): r for r in headline_ratios(runs)}
    assert set(ratios) == {
        ("rtscore-1", "floor"),
        ("rtscore-1", "mleap-served"),
        ("rtscore-2", "floor"),
        ("rtscore-2", "mleap-served"),
        ("rtscore-2@500", "floor@500"),  # no mleap-served at 500/s: no ratio invented for it
    }
    assert ratios[("rtscore-1", "floor")]["p50"] == 1.5
    assert ratios[("rtscore-1", "floor")]["p99"] == 2.0
    assert ratios[("rtscore-2", "mleap-served")]["p99"] == 0.188
    assert ratios[("rtscore-2@500", "floor@500")]["rate"] == 500
    table = headline_table(list(ratios.values()))
    assert "rtscore-2@500" in table
    assert "0.19x" in table


def test_a_run_without_latency_gets_no_ratio() -> None:
    runs = [_run("floor", 10, 0.5, 1.0), {"name": "rtscore-1", "rate": 10, "latency_ms": None}]
    assert headline_ratios(runs) == []
