"""The regression guard: `rtscore bench compare --quick` runs end to end and writes the report contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.cli_run import rtscore

pytestmark = [pytest.mark.jvm, pytest.mark.slow]

LATENCY_KEYS = {"avg", "p50", "p90", "p95", "p99", "p999", "max", "stddev"}
RUN_KEYS = {"name", "target", "mode", "rate", "achieved_rate", "requests", "errors", "latency_ms"}


@pytest.mark.timeout(600)
def test_quick_compare_measures_before_mleap_and_rtscore(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = rtscore("bench", "compare", "--quick", "--json", str(out), timeout=540)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "avg vs before" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1
    assert {"trees", "nodes", "max_depth"} <= report["fixture"].keys()
    prefixes = {run["name"].split("-")[0].split("@")[0] for run in report["runs"]}
    assert {"before", "mleap", "rtscore"} <= prefixes
    for run in report["runs"]:
        assert run.keys() >= RUN_KEYS, run["name"]
        assert run["latency_ms"].keys() >= LATENCY_KEYS, run["name"]
        if run["requests"]:
            assert run["latency_ms"]["max"] >= run["latency_ms"]["p99"] >= run["latency_ms"]["p50"] > 0
    assert out.with_suffix(".png").stat().st_size > 0
