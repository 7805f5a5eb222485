"""`rtscore bench scorer --quick` runs end to end: latency, CPU per call and memory of 1 and 2 workers."""

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
    assert [run["name"] for run in report["runs"]] == ["rtscore-1@200", "rtscore-2@200", "rtscore-2@400"]
    for run in report["runs"]:
        assert run["requests"] > 0
        assert run["errors"] == {}
        assert run["server_cpu_ms"]["total"] > 0
        assert run["server_cpu_ms"]["event_loop"] > 0
    assert report["runs"][0]["client"]["channels"] == 1
    assert report["runs"][1]["client"]["channels"] == 8
    memory = report["scorer"]["memory"]
    assert memory["rtscore-1"]["processes"] == 1
    assert memory["rtscore-2"]["processes"] == 3
    assert memory["workers_ratio"] == pytest.approx(
        memory["rtscore-2"]["workers_pss_mb"] / memory["rtscore-1"]["workers_pss_mb"], abs=1e-3
    )
