"""`rtscore bench e2e --quick` end to end: the extractor over real scorers and Redis, beside the scorer
alone, the one-hop `floor` and the extractor's hops without its work (`e2e-floor`); the extractor as two
workers on one port (`--extractor-workers`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.native import relay_binary
from benchmarks.tier_counts import EXTRACTOR_COUNTERS
from tests.integration.cli_run import rtscore
from tests.integration.redis_fixtures import redis_url

pytestmark = [pytest.mark.slow]
__all__ = ["redis_url"]


@pytest.mark.timeout(420)
def test_quick_e2e_bench_reads_the_extractor_against_both_floors(redis_url: str, tmp_path: Path) -> None:
    out = tmp_path / "e2e.json"
    done = rtscore(
        "bench", "e2e", "--quick", "--duration", "3", "--warmup", "1", "--rate", "200", "--max-rate", "300",
        "--redis-url", redis_url, "--extractor-workers", "2", "--json", str(out), timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    assert "talk (MLeap)" in done.stdout
    assert "e2e over e2e-floor" in done.stdout
    report = json.loads(out.read_text())
    by_name = {run["name"]: run for run in report["runs"]}
    assert [run["name"] for run in report["runs"]][:4] == ["e2e", "e2e-floor", "scorer", "floor"]
    measured = ("e2e", "e2e-floor", "scorer", "floor")
    for name in measured:
        run = by_name[name]
        assert run["requests"] > 0, name
        assert run["errors"] == {}, name
        assert run["rate"] == 200.0, name
    ratios = report["e2e_over_floor"]
    e2e, floor = by_name["e2e"]["latency_ms"], by_name["e2e-floor"]["latency_ms"]
    assert ratios["p50"] == pytest.approx(e2e["p50"] / floor["p50"], abs=1e-3)
    # the relay makes the extractor's hops (client -> relay -> Redis and floor) with no work: no faster
    # than the one hop to `floor`
    assert floor["p50"] > by_name["floor"]["latency_ms"]["p50"]
    # each run's CPU per call by the tiers it went through; the extractor with both workers counted
    tiers = {name: set(run["server_cpu_ms"]) for name, run in by_name.items() if name in measured}
    assert tiers == {
        "e2e": {"extractor", "scorers", "redis", "total"},
        "e2e-floor": {"relay", "floor", "redis", "total"},
        "scorer": {"scorer", "total"},
        "floor": {"floor", "total"},
    }
    for name in measured:
        cpu = by_name[name]["server_cpu_ms"]
        assert all(ms > 0 for ms in cpu.values()), (name, cpu)
        assert cpu["total"] == pytest.approx(sum(ms for tier, ms in cpu.items() if tier != "total"), abs=2e-3)
    # the extractor parses, computes and serializes what the relay only forwards as bytes
    assert by_name["e2e"]["server_cpu_ms"]["extractor"] > by_name["e2e-floor"]["server_cpu_ms"]["relay"]
    assert report["highest_rate_p99_le_10ms"]["tried"][0]["rate"] == 200.0
    # the runs took turns in two rounds (--quick), and e2e is also read round against round
    assert report["rounds"] == 2
    assert len(report["python_loop_ms_by_round"]) == 2  # the host's speed at each round
    assert all(ms > 0 for ms in report["python_loop_ms_by_round"])
    assert all(len(by_name[name]["rounds_ms"]) == 2 for name in measured)
    pairs = zip(by_name["e2e"]["rounds_ms"], by_name["e2e-floor"]["rounds_ms"], strict=True)
    expected = [pytest.approx(ours["p50"] / base["p50"], abs=2e-3) for ours, base in pairs]
    assert report["e2e_over_floor_by_round"]["p50"] == expected
    assert "e2e over e2e-floor round by round" in done.stdout
    # what the tiers counted in each run, read beside its latency: the extractor's over both workers
    assert set(EXTRACTOR_COUNTERS) <= set(by_name["e2e"]["counts"])
    assert all(isinstance(n, int) and n >= 0 for n in by_name["e2e"]["counts"].values())
    assert by_name["e2e"]["counts"]["decisions"] >= by_name["e2e"]["requests"]  # its pages were read
    assert set(by_name["e2e-floor"]["counts"]) == {"redis_given_up"}
    assert "e2e counted (warm-up included): velocity_fallbacks" in done.stdout
    if relay_binary() is not None:  # the same hops from a native server, after the four runs
        native = by_name["e2e-floor-native"]
        assert (native["requests"] > 0, native["errors"]) == (True, {})
        assert set(native["server_cpu_ms"]) == {"relay", "floor", "redis", "total"}
        assert report["e2e_over_native_floor"]["p50"] == pytest.approx(
            e2e["p50"] / native["latency_ms"]["p50"], abs=1e-3
        )
        # it makes the Python relay's round trips with a native gRPC stack and Redis client
        assert native["server_cpu_ms"]["relay"] < by_name["e2e-floor"]["server_cpu_ms"]["relay"]
    assert report["extractor_workers"] == 2
    assert out.with_suffix(".png").stat().st_size > 0
