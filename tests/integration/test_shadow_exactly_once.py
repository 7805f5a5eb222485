"""Worker processes SIGKILLed mid-batch, a second worker joining, then the evaluation the gate reads."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import numpy as np
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from shadow.db import connect_pool
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    Team,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    status_of,
    team_fixture,
)
from tests.integration.shadow_setup import (
    export_forest,
    fresh_topics,
    produce,
    records,
    rows_per_model,
    stored_total,
    wait_for,
)
from tests.paths import ROOT

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

RECORDS = 20_000
PARTITIONS = 4


class Worker:
    """One `rtscore shadow run` process; its log goes to a file."""

    def __init__(self, log: Path, args: list[str], env: dict[str, str]) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rtscore.cli", "shadow", "run", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def assigned(self) -> set[int]:
        """Partitions this process was given at some point (from its log)."""
        found = re.findall(r"assigned \[([0-9, ]+)\]", self.log.read_text())
        return {int(p) for group in found for p in group.split(",")}


async def make_champion_and_candidates(team: Team, tmp_path: Path) -> Path:
    """fraud@1 champion of production; fraud@2 (same trees) and fraud@3 (inverted labels) shadow there."""
    champion = export_forest(tmp_path / "fraud-1.zip", seed=0, name="fraud1")
    bundles = [champion, export_forest(tmp_path / "fraud-2.zip", seed=0, name="fraud2")]
    bundles.append(export_forest(tmp_path / "fraud-3.zip", seed=0, name="fraud3", flip=True))
    for version, bundle in enumerate(bundles, 1):
        await team.author.register("fraud", bundle)
        for env in ("integration", "qa", "production"):
            request = pb.DeployRequest(
                name="fraud", version=version, environment=env, role="shadow", reason="dark run"
            )
            await team.author.call("Deploy", request)
    first = pb.EvaluationRequest(
        name="fraud", candidate_version=1, environment="production", sample_size=5000, agreement=1.0
    )
    await team.service.call("RecordEvaluation", first)
    promote = pb.ChangeRequest(name="fraud", version=1, environment="production", reason="first champion")
    await team.approver.call("Promote", promote)
    return champion


def worker_env(database_url: str, kafka: str, token: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RTSCORE_SHADOW_DATABASE_URL": database_url,
        "RTSCORE_SHADOW_KAFKA_BOOTSTRAP": kafka,
        "RTSCORE_SHADOW_TOKEN": token,
        "RTSCORE_SHADOW_BUNDLE_DIR": str(tmp_path / "bundles"),
        "RTSCORE_SHADOW_SESSION_TIMEOUT_MS": "6000",
    }


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`rtscore shadow ARGS…` in a child process, off the loop (the registry answers on this loop)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rtscore.cli", "shadow", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def partitions_complete(pool: asyncpg.Pool, topic: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT version, partition, count(*) AS n, count(DISTINCT "offset") AS distinct_offsets,
                  min("offset") AS first, max("offset") AS last
           FROM shadow_scores WHERE topic = $1 GROUP BY version, partition ORDER BY version, partition""",
        topic,
    )
    return [dict(r) for r in rows]


async def test_killed_workers_and_a_second_worker_store_every_record_once_and_the_gate_reads_the_evaluation(
    team: Team, database_url: str, kafka_bootstrap: str, registry: Any, tmp_path: Path
) -> None:
    champion = await make_champion_and_candidates(team, tmp_path)
    env = worker_env(database_url, kafka_bootstrap, team.service.token, tmp_path)
    pool = await connect_pool(database_url)
    items = records(champion, RECORDS, seed=11, prefix="txn")
    with fresh_topics(kafka_bootstrap, PARTITIONS) as (topic, _dlq):
        produce(kafka_bootstrap, topic, items)
        args = ["--registry", registry.address, "--env", "production", "--topic", topic, "--group", topic]
        args += ["--batch-size", "400", "--log-level", "INFO"]
        workers: list[Worker] = []

        def start(name: str, incarnation: int) -> Worker:
            worker = Worker(tmp_path / f"{name}-{incarnation}.log", [*args, "--instance-id", name], env)
            workers.append(worker)
            return worker

        try:
            a = start("a", 0)
            seen = 0
            for kill in range(1, 4):
                # SIGKILL while it is busy: 20,000 records wait, so it is always in some batch
                target = seen + 1_500
                await wait_for(lambda t=target: _stored_at_least(pool, topic, t), 60, f"{target} stored")
                seen = await stored_total(pool, topic)
                a.kill()
                a = start("a", kill)
                if kill == 2:
                    b = start("b", 0)
            await wait_for(lambda: _stored_at_least(pool, topic, RECORDS), 90, "every record stored")
            # both live workers held partitions of the group (the last restart of a joined beside b)
            assert b.assigned()
            assert a.assigned()
            assert a.assigned() | b.assigned() == set(range(PARTITIONS))
        finally:
            for worker in workers:
                worker.stop()
        print(f"stored after kills: {seen}, logs: {[w.log.name for w in workers]}")

        assert await rows_per_model(pool, topic) == {"fraud@2": RECORDS, "fraud@3": RECORDS}
        for part in await partitions_complete(pool, topic):
            # every offset of every partition once per model: none missing, none twice
            assert part["first"] == 0
            assert part["n"] == part["distinct_offsets"] == part["last"] + 1, part
        assert await pool.fetchval("SELECT sum(duplicates) FROM shadow_offsets WHERE topic = $1", topic) == 0

        status = await cli(env, "status", "--topic", topic, "--group", topic, "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [p["lag"] for p in report["partitions"]] == [0] * PARTITIONS
        assert sum(p["next_offset"] for p in report["partitions"]) == RECORDS
        shown = await cli(env, "scores", "fraud@2", "--limit", "3", "--json")
        assert shown.returncode == 0, shown.stderr
        assert len(json.loads(shown.stdout)) == 3

    # chargebacks arrive: a noisy truth for 2,000 of the transactions
    rng = np.random.default_rng(3)
    scores = await pool.fetch(
        "SELECT transaction_id, champion_score FROM shadow_scores WHERE version = 2 LIMIT 2000"
    )
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(
            json.dumps(
                {
                    "transaction_id": r["transaction_id"],
                    "fraud": bool((r["champion_score"] > 0.5) ^ (rng.random() < 0.1)),
                }
            )
            + "\n"
            for r in scores
        )
    )
    loaded = await cli(env, "label", "--file", str(labels))
    assert loaded.returncode == 0, loaded.stderr
    await pool.close()

    cli_env = {**env, "RTSCORE_DATABASE_URL": database_url, "RTSCORE_TOKEN": team.service.token}
    agreeing = await cli(
        cli_env, "evaluate", "fraud@2", "--env", "production", "--registry", registry.address, "--json"
    )
    assert agreeing.returncode == 0, agreeing.stderr + agreeing.stdout
    good = json.loads(agreeing.stdout)
    assert good["count"] == RECORDS
    assert good["agreement"] == 1.0
    assert good["psi"] < 0.01
    assert good["recorded"]["passed"] is True
    assert good["labelled"] == 2000
    assert good["candidate_auc"] == good["champion_auc"] > 0.8
    disagreeing = await cli(
        cli_env, "evaluate", "fraud@3", "--env", "production", "--registry", registry.address, "--json"
    )
    assert disagreeing.returncode == 3, disagreeing.stderr + disagreeing.stdout
    bad = json.loads(disagreeing.stdout)
    assert bad["agreement"] < 0.5
    # inverted labels give a mirrored score distribution, so PSI stays small: agreement is what refuses it
    assert bad["mean_abs_difference"] > 0.3
    assert bad["recorded"]["passed"] is False

    # the production gate reads them: the disagreeing candidate is refused, the agreeing one promoted
    refuse = pb.ChangeRequest(name="fraud", version=3, environment="production", reason="try the new one")
    code, details = await status_of(team.approver2.call("Promote", refuse))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "failed" in details, details
    promote = pb.ChangeRequest(name="fraud", version=2, environment="production", reason="agrees in shadow")
    promoted = await team.approver2.call("Promote", promote)
    assert promoted.role == "champion"


async def _stored_at_least(pool: asyncpg.Pool, topic: str, count: int) -> bool:
    await asyncio.sleep(0)
    return await stored_total(pool, topic) >= count
