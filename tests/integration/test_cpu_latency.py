"""The CPU latency request on the real `/dev/cpu_dma_latency`: held by a serving scorer and released
when it stops, and by the benchmarks for their run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rtscore.cpu_latency import DEVICE, CpuLatencyRequest, current_limit_us
from tests.integration.cli_run import rtscore
from tests.integration.extractor_processes import Served, fraud_files, scorer, started
from tests.integration.test_scorer_process import DEMO, DEMO_FRAME, ScorerProcess

__all__ = ["fraud_files", "started"]

pytestmark = pytest.mark.skipif(
    not os.access(DEVICE, os.R_OK | os.W_OK), reason=f"{DEVICE} is not there or not writable here"
)


def test_the_machine_limit_is_the_request_while_it_is_held() -> None:
    before = current_limit_us()
    with CpuLatencyRequest(0) as request:
        assert request.held
        assert current_limit_us() == 0
    assert current_limit_us() == before


def test_a_scorer_holds_the_limit_while_it_serves_and_releases_it_when_it_stops(tmp_path: Path) -> None:
    before = current_limit_us()
    assert before != 0, "another process holds the limit at 0: this test could not tell"
    scorer = ScorerProcess("--model", f"demo={DEMO}", "--cpu-latency-us", "0",
                           env={"RTSCORE_CACHE_DIR": str(tmp_path / "cache")})  # fmt: skip
    try:
        assert current_limit_us() == 0
    finally:
        code, err = scorer.stop()
    assert code == 0, err
    assert current_limit_us() == before


def test_an_extractor_holds_the_limit_while_it_serves(
    fraud_files: tuple[Path, Path], started: list[Served], tmp_path: Path
) -> None:
    before = current_limit_us()
    assert before != 0, "another process holds the limit at 0: this test could not tell"
    one = scorer(fraud_files[0], tmp_path / "cache")
    started.append(one)
    extractor = Served(
        "extractor", "serve", "--scorers", one.target, "--model", "fraud", "--cpu-latency-us", "0"
    )
    started.append(extractor)
    assert current_limit_us() == 0
    assert extractor.stop() == 0
    assert current_limit_us() == before


def test_a_benchmark_run_records_the_limit_it_held(tmp_path: Path) -> None:
    scorer = ScorerProcess("--model", f"demo={DEMO}", env={"RTSCORE_CACHE_DIR": str(tmp_path / "cache")})
    try:
        for limit in ([], ["--cpu-latency-us", "0"]):
            args = ["--target", scorer.target, "--model", "demo", "--frame", str(DEMO_FRAME), *limit]
            ran = rtscore(
                "bench", "run", *args, "--count", "20", "--warmup", "0", "--json", str(tmp_path / "r.json")
            )
            assert ran.returncode == 0, ran.stderr
            report = json.loads((tmp_path / "r.json").read_text())
            assert report["runs"][0]["errors"] == {}
            assert report["machine"]["cpu_idle"]["latency_limit_us"] == (0 if limit else current_limit_us())
    finally:
        scorer.stop()
