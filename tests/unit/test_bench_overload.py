"""`rtscore bench overload`'s arithmetic: goodput and refusals from a run's calls, the capacity rule, the
verdict against the targets."""

from __future__ import annotations

from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.overload_bench import Targets, outcome, passes, verdict, verdict_lines


def run_of(ok_ms: list[float], refused_ms: list[float], window_s: float = 2.0) -> RunResult:
    """A finished run (50 ms deadlines) whose calls took these latencies: answered, then failed."""
    recorder = LatencyRecorder()
    for i, ms in enumerate(ok_ms):
        recorder.record(i * 0.001, ms / 1e3)
    for i, ms in enumerate(refused_ms):
        recorder.record_error(i * 0.001, ms / 1e3, "CANCELLED")
    spec = LoadSpec("127.0.0.1:1", rate=100.0, duration=window_s, timeout=0.05)
    return RunResult(
        spec, recorder, len(ok_ms) + len(refused_ms), window_s, {"p50": 0.0, "p99": 0.0, "max": 0.0}
    )


def test_goodput_counts_answered_calls_and_refusals_have_their_own_latency() -> None:
    figures = outcome(run_of(ok_ms=[2.0] * 300, refused_ms=[0.3] * 99 + [4.0]))
    assert figures["goodput"] == 150.0  # 300 answered in 2 s
    assert figures["failed_share"] == 0.25
    assert figures["refused_ms"]["p50"] == 0.3
    assert figures["refused_ms"]["max"] == 4.0
    assert figures["timed_out_share"] == 0.0
    # a call that failed at its deadline ran out of time: counted as failed, not as a refusal
    late = outcome(run_of(ok_ms=[2.0] * 300, refused_ms=[0.3] * 50 + [50.2] * 50))
    assert (late["failed_share"], late["timed_out_share"], late["refused_ms"]["max"]) == (0.25, 0.125, 0.3)
    assert outcome(run_of(ok_ms=[1.0] * 10, refused_ms=[]))["refused_ms"] is None
    assert "refused_from_send_ms" not in figures  # a client that does not say how long calls waited


def test_refusals_are_also_timed_from_when_they_left_the_client() -> None:
    run = run_of(ok_ms=[2.0] * 100, refused_ms=[1.5] * 100)
    # every refusal waited 1.2 ms to leave a client that fell behind; the answered calls did not wait
    run.recorder.waited = [0.0] * 100 + [0.0012] * 100
    figures = outcome(run)
    assert figures["refused_ms"]["p99"] == 1.5
    assert figures["refused_from_send_ms"]["p99"] == 0.3
    assert figures["refused_from_send_ms"]["max"] == 0.3


def test_a_rate_is_within_capacity_only_with_a_short_tail_and_few_refusals() -> None:
    record = {"latency_ms": {"p99": 9.0}, "failed_share": 0.005}
    assert passes(record, p99_ms=10.0, max_refused=0.01)
    assert not passes({**record, "latency_ms": {"p99": 11.0}}, p99_ms=10.0, max_refused=0.01)
    assert not passes({**record, "failed_share": 0.02}, p99_ms=10.0, max_refused=0.01)
    assert not passes({**record, "latency_ms": None}, p99_ms=10.0, max_refused=0.01)  # nothing answered


def test_the_verdict_judges_the_overload_against_the_capacity() -> None:
    capacity = {"rate": 1000.0, "goodput": 1000.0}
    overload = {
        "rate": 2000.0,
        "goodput": 920.0,
        "latency_ms": {"p99": 8.5},
        "failed_share": 0.54,
        "timed_out_share": 0.0,
        "refused_ms": {"p50": 0.2, "p99": 1.4, "max": 3.0},
        "errors": {"CANCELLED": 1080},
    }
    v = verdict(capacity, overload, 2.0, Targets())
    assert (v["goodput_share"], v["accepted_p99_ms"], v["refusal_p99_ms"]) == (0.92, 8.5, 1.4)
    assert v["ok"] == {"accepted_p99": True, "goodput": True, "refusals": False, "refusals_from_send": True}
    assert v["refusal_from_send_p99_ms"] is None
    assert "left the client" not in verdict_lines(v)
    sent = verdict(capacity, {**overload, "refused_from_send_ms": {"p50": 0.1, "p99": 0.6, "max": 2.0}}, 2.0,
                   Targets())  # fmt: skip
    assert (sent["refusal_from_send_p99_ms"], sent["ok"]["refusals_from_send"]) == (0.6, True)
    assert "refusals timed from when each left the client: p99 0.6 ms [ok]" in verdict_lines(sent)
    starved = verdict(capacity, {**overload, "goodput": 500.0, "latency_ms": None}, 2.0, Targets())
    assert starved["ok"]["goodput"] is False
    assert starved["ok"]["accepted_p99"] is False
    assert "the refusals among them answered at p99 1.4 ms [MISSED]" in verdict_lines(v)
    calm = verdict(
        capacity, {**overload, "failed_share": 0.0, "refused_ms": None, "errors": {}}, 2.0, Targets()
    )
    assert "0.0% of calls failed; none refused [ok]" in verdict_lines(calm)  # not "p99 None ms"
