"""The regression guard: `rtscore bench compare --quick` runs end to end and writes the report contract,
with the transport floor and MLeap served beside rtscore and the headline ratios over both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_run import rtscore

pytestmark = [pytest.mark.jvm, pytest.mark.slow]

LATENCY_KEYS = {"avg", "p50", "p90", "p95", "p99", "p999", "max", "stddev"}
RUN_KEYS = {"name", "target", "mode", "rate", "achieved_rate", "requests", "errors", "latency_ms"}


@pytest.mark.timeout(600)
def test_quick_compare_measures_floor_before_mleap_and_rtscore(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = rtscore("bench", "compare", "--quick", "--json", str(out), timeout=540)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "avg vs before" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    assert {"trees", "nodes", "max_depth"} <= report["fixture"].keys()
    prefixes = {run["name"].split("-")[0].split("@")[0] for run in report["runs"]}
    assert {"floor", "before", "mleap", "rtscore"} <= prefixes
    runs = {run["name"]: run for run in report["runs"]}
    assert {"floor", "mleap-served", "mleap-jvm-inprocess", "rtscore-1", "rtscore-2"} <= runs.keys()
    for name in ("floor", "mleap-served"):
        # Both answer every call they get; an overloaded machine may only time some out.
        assert runs[name]["requests"] > 0, name
        wrong = {"INVALID_ARGUMENT", "UNIMPLEMENTED", "INTERNAL", "NOT_FOUND"}
        assert not wrong & runs[name]["errors"].keys(), name
    pairs = {(h["run"], h["over"]) for h in report["compare"]["headline"]}
    assert {(r, o) for r in ("rtscore-1", "rtscore-2") for o in ("floor", "mleap-served")} <= pairs
    for ratio in report["compare"]["headline"]:
        assert ratio["p50"] > 0, ratio
        assert ratio["p99"] > 0, ratio
    assert "rtscore over the transport floor and over MLeap served" in done.stdout
    # the targets took turns in the plan's rounds, each round's figures kept, the host's speed at each
    rounds = report["compare"]["rounds"]
    assert all(len(runs[name]["rounds_ms"]) == rounds for name in ("floor", "rtscore-1", "rtscore-2"))
    assert len(report["python_loop_ms_by_round"]) == rounds
    for run in report["runs"]:
        assert run.keys() >= RUN_KEYS, run["name"]
        assert run["latency_ms"].keys() >= LATENCY_KEYS, run["name"]
        if run["requests"]:
            assert run["latency_ms"]["max"] >= run["latency_ms"]["p99"] >= run["latency_ms"]["p50"] > 0
    assert out.with_suffix(".png").stat().st_size > 0
