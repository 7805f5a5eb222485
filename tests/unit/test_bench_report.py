"""Latency statistics, the report's JSON contract, its tables and its PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import clients
from benchmarks.compare import nice_rate
from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.progress import ProgressBar
from benchmarks.report import build_report, compare_table, run_record, run_table, write_report
from rtscore.errors import InvalidArgument


def _uniform_recorder(errors: int = 0) -> LatencyRecorder:
    """1 ms .. 1000 ms, one call each, sent 10 ms apart; plus `errors` slow failures."""
    recorder = LatencyRecorder()
    for i in range(1, 1001):
        recorder.record(i / 100, i / 1000)
    for i in range(errors):
        recorder.record_error(i / 100, 5.0, "UNAVAILABLE")
    return recorder


def _result(recorder: LatencyRecorder, sent: int = 1000, window: float = 10.0) -> RunResult:
    spec = LoadSpec("127.0.0.1:1", rate=100.0, duration=10.0)
    return RunResult(spec, recorder, sent, window, {"p50": 0.1, "p99": 0.5, "max": 1.0})


def test_percentiles_of_a_known_distribution() -> None:
    summary = _uniform_recorder().summary()
    assert summary is not None
    assert summary.p50 == pytest.approx(500, rel=0.002)
    assert summary.p90 == pytest.approx(900, rel=0.002)
    assert summary.p99 == pytest.approx(990, rel=0.002)
    assert summary.p999 == pytest.approx(999, rel=0.002)
    assert summary.max == pytest.approx(1000, rel=0.002)
    assert summary.avg == pytest.approx(500.5, rel=0.002)
    assert summary.stddev == pytest.approx(288.7, rel=0.01)


def test_errors_are_counted_apart_from_latency() -> None:
    recorder = _uniform_recorder(errors=10)
    summary = recorder.summary()
    assert summary is not None
    assert recorder.errors == {"UNAVAILABLE": 10}
    assert recorder.requests == 1010
    assert summary.max == pytest.approx(1000, rel=0.002)


def test_no_successful_call_has_no_latency() -> None:
    recorder = LatencyRecorder()
    recorder.record_error(0.0, 0.1, "DEADLINE_EXCEEDED")
    assert recorder.summary() is None
    assert run_record("x", _result(recorder, sent=1))["latency_ms"] is None


def test_recorders_survive_the_trip_between_processes_and_merge() -> None:
    a, b = _uniform_recorder(errors=2), _uniform_recorder()
    back = LatencyRecorder.from_wire(a.to_wire())
    back.merge(b, offset_s=10.0)
    assert back.histogram.get_total_count() == 2000
    assert back.errors == {"UNAVAILABLE": 2}
    assert max(back.sent_at) == pytest.approx(20.0)


def test_timeline_buckets_cover_the_run() -> None:
    buckets = _uniform_recorder().timeline_buckets(buckets=10)
    assert sum(b["count"] for b in buckets) == 1000
    assert buckets[0]["p99"] < buckets[-1]["p99"]


def test_run_record_has_the_contract_keys() -> None:
    record = run_record("rtscore-1", _result(_uniform_recorder(errors=3)))
    for key in ("name", "target", "mode", "rate", "achieved_rate", "requests", "errors", "latency_ms"):
        assert key in record
    assert set(record["latency_ms"]) == {"avg", "p50", "p90", "p95", "p99", "p999", "max", "stddev"}
    assert record["errors"] == {"UNAVAILABLE": 3}
    assert record["rate"] == 100.0
    assert record["achieved_rate"] == 100.0


def test_a_client_that_fell_behind_is_short_or_late() -> None:
    assert not _result(_uniform_recorder(), sent=1000, window=10.0).short
    assert _result(_uniform_recorder(), sent=1000, window=12.0).short
    lagging = _result(_uniform_recorder())
    lagging.send_lag_ms = {"p50": 1.0, "p99": 50.0, "max": 80.0}
    assert lagging.late
    assert not lagging.short


def test_compare_table_gives_ratios_to_before() -> None:
    before = run_record("before", _result(_uniform_recorder()))
    fast = LatencyRecorder()
    for i in range(1, 1001):
        fast.record(i / 100, i / 4000)
    ours = run_record("rtscore-2", _result(fast))
    table = compare_table([before, ours])
    assert "avg vs before" in table
    assert "0.25x" in table.splitlines()[-1]
    assert "1.00x" in table.splitlines()[2]
    assert "p999 ms" in run_table([before, ours])


def test_report_writes_json_and_png(tmp_path: Path) -> None:
    report = build_report([run_record("before", _result(_uniform_recorder()))], {"trees": 3})
    png = write_report(report, tmp_path / "out" / "report.json")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["fixture"] == {"trees": 3}
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["python_loop_ms"] > 0  # how fast the machine ran when the report was written
    assert data["runs"][0]["name"] == "before"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_common_rates_are_round_numbers() -> None:
    assert nice_rate(437.0) == 200.0
    assert nice_rate(56.0) == 50.0
    assert nice_rate(1.2) == 1.0
    assert nice_rate(0.3) == pytest.approx(0.2)


def test_load_spec_names_its_bad_setting() -> None:
    with pytest.raises(InvalidArgument, match="rate"):
        LoadSpec("h:1", rate=0).check()
    with pytest.raises(InvalidArgument, match="exactly one of duration and count"):
        LoadSpec("h:1", duration=None).check()
    share = LoadSpec("h:1", rate=90, count=10, duration=None, concurrency=3).share(0, 2)
    assert (share.rate, share.count, share.concurrency) == (45, 5, 2)
    with pytest.raises(InvalidArgument, match="at least as many callers"):
        clients.run(LoadSpec("h:1", mode="closed", concurrency=1), [b""], processes=2)


def test_progress_bar_line() -> None:
    line = ProgressBar("run", 10.0).line(5.0, 480, 20)
    assert "50%" in line
    assert "ok 480" in line
    assert "err 20" in line
    assert "100/s" in line
