"""`rtscore demo` in a short run: a live promotion with no failed call, all in the registry's log."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from tests.integration.cli_run import rtscore

pytestmark = [pytest.mark.services, pytest.mark.slow]

# The stages of the model's life the audit log must show, per version: (action, environment).
LIFE = [
    ("register", ""),
    ("deploy", "integration"),
    ("deploy", "qa"),
    ("deploy", "production"),
    ("evaluate", "production"),
    ("promote", "production"),
]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _database_exists(url: str, name: str) -> bool:
    async def count() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    return asyncio.run(count()) > 0


def test_short_demo_promotes_the_candidate_under_traffic_without_a_failed_call(
    tmp_path: Path, postgres_url: str
) -> None:
    report_path = tmp_path / "demo.json"
    done = rtscore(
        "demo", "--duration", "16", "--rate", "100", "--train-count", "3000", "--json", str(report_path),
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert {"latency_ms", "evaluation", "promotions", "failed_calls", "events"} <= report.keys()

    # a promotion of v2 over v1 happened while traffic flowed, and the probe saw v2 answer after it
    (promotion,) = report["promotions"]
    assert (promotion["from_version"], promotion["to_version"]) == (1, 2)
    assert 0 < promotion["at_s"] < 16 - 3
    assert promotion["served_after_s"] is not None
    assert promotion["served_after_s"] < 5
    assert report["failed_calls"] == 0
    # the extractor's own counts over the run, read from its metrics endpoint (fallbacks, retries, ...)
    counts = report["extractor_counts"]
    assert {"velocity_fallbacks", "pool_retries", "pool_ejections", "shadow_dropped"} <= counts.keys()
    assert all(isinstance(n, int) and n >= 0 for n in counts.values())
    assert counts["decisions"] >= report["latency_ms"]["calls"]  # the page was read: every call counted
    assert "the extractor counted over the run: velocity_fallbacks" in done.stdout
    assert promotion["failed_calls_around"] == 0
    latency = report["latency_ms"]
    assert latency["failed"] == 0
    assert latency["calls"] >= 0.9 * 100 * 16
    assert 0 < latency["avg"] <= latency["p95"] <= latency["p99"]
    assert latency["stddev"] >= 0

    # the evaluation came from the shadow rows and was recorded in the registry, where the gate read it
    evaluation = report["evaluation"]
    assert evaluation["candidate"] == "fraud@2"
    assert evaluation["champion_version"] == 1
    assert evaluation["count"] >= 200
    assert evaluation["since"] is not None  # the rows after the cold start of the velocity store
    assert evaluation["labelled"] == evaluation["count"]  # every transaction's label was stored first
    assert 0.5 < evaluation["champion_auc"] <= 1
    assert 0.5 < evaluation["candidate_auc"] <= 1
    assert evaluation["recorded"]["passed"]
    assert evaluation["recorded"]["recorded_by"] == "platform"

    # every stage of both versions' lives is in the registry's audit log, in order, by the right people
    events = report["events"]
    for version in (1, 2):
        life = [(e["action"], e["environment"]) for e in events if e["version"] == version]
        stages = [step for step in life if step in LIFE]
        assert stages == LIFE, (version, life)
    actors = {(e["action"], e["version"], e["environment"]): e["actor"] for e in events}
    assert actors[("register", 2, "")] == "dana"
    assert actors[("promote", 2, "production")] == "riley"
    assert actors[("evaluate", 2, "production")] == "platform"
    demoted = [e for e in events if e["action"] == "demote" and e["environment"] == "production"]
    assert [e["version"] for e in demoted] == [1]
    assert Counter(e["action"] for e in events)["promote"] == 2

    # the PNG was written, nothing was left running and the run's database is gone
    assert Path(report["png"]).stat().st_size > 10_000
    pids = report["platform"]["pids"]
    assert set(pids) >= {"registry", "scorer-1", "scorer-2", "extractor", "shadow-worker"}
    assert [name for name, pid in pids.items() if _alive(pid)] == []
    database = report["platform"]["database"].rsplit("/", 1)[-1]
    assert not _database_exists(postgres_url, database)
