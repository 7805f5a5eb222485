"""The score database restarted under a running worker: it waits, resumes, loses and repeats nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from protos.rtscore.v1 import registry_pb2 as pb
from rtscore.localservices.postgres import PostgresCluster, PostgresRun
from rtscore.localservices.processes import free_port, service_account
from rtscore.localservices.settings import LocalServicesSettings
from shadow.db import connect_pool
from shadow.runner import run
from shadow.settings import ShadowSettings
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    Team,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    team_fixture,
)
from tests.integration.shadow_setup import (
    export_forest,
    fresh_topics,
    records,
    rows_per_model,
    send_at,
    stored_total,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

RECORDS = 6_000


@pytest.fixture
def private_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PostgresCluster, PostgresRun]]:
    """A Postgres cluster of this test's own on a free port (the shared one is never restarted)."""
    settings = LocalServicesSettings()
    cluster = PostgresCluster(tmp_path_factory.mktemp("private-pg"), settings, service_account(None))
    running = cluster.start(free_port())
    try:
        yield cluster, running
    finally:
        cluster.stop()


def retries() -> float:
    return REGISTRY.get_sample_value("rtscore_shadow_retries_total", {"cause": "postgres"}) or 0.0


async def test_a_postgres_restart_mid_run_loses_nothing_and_duplicates_nothing(
    team: Team,
    kafka_bootstrap: str,
    registry: Any,
    private_postgres: tuple[PostgresCluster, PostgresRun],
    tmp_path: Path,
) -> None:
    cluster, running = private_postgres
    champion = export_forest(tmp_path / "restart-1.zip", seed=0, name="restart1")
    await team.author.register("restart", champion)
    deploy = pb.DeployRequest(name="restart", version=1, environment="integration", role="shadow", reason="r")
    await team.author.call("Deploy", deploy)
    items = records(champion, RECORDS, seed=21, prefix="pg")
    before = retries()
    with fresh_topics(kafka_bootstrap, partitions=2) as (topic, _dlq):
        settings = ShadowSettings(
            database_url=running.url,
            kafka_bootstrap=kafka_bootstrap,
            registry=registry.address,
            token=team.service.token,
            environment="integration",
            topic=topic,
            group=topic,
            bundle_dir=tmp_path / "bundles",
            batch_size=200,
            retry_max_s=0.5,
        )
        pool = await connect_pool(running.url)
        stop = asyncio.Event()
        worker = asyncio.create_task(run(settings, stop))
        try:
            # records arrive over a few seconds, so the restart falls in the middle of the stream
            sending = asyncio.create_task(send_at(kafka_bootstrap, topic, items, 1_000))
            await wait_for(lambda: _stored_at_least(pool, topic, 1_000), 60, "1,000 stored")
            await pool.close()
            await asyncio.to_thread(cluster.stop)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(cluster.start, running.port)
            pool = await connect_pool(running.url)
            await sending
            took = await wait_for(lambda: _stored_at_least(pool, topic, RECORDS), 60, "every record stored")
            print(f"all stored {took:.1f}s after the last record was sent; retries {retries() - before:.0f}")
            assert retries() > before, "the worker met the outage and retried"
            assert await rows_per_model(pool, topic) == {"restart@1": RECORDS}
            stored = await pool.fetchval(
                'SELECT count(DISTINCT (partition, "offset")) FROM shadow_scores WHERE topic = $1', topic
            )
            assert stored == RECORDS
            assert (
                await pool.fetchval("SELECT sum(duplicates) FROM shadow_offsets WHERE topic = $1", topic) == 0
            )
            assert not worker.done(), "the worker is still running, having resumed by itself"
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)
            await pool.close()


async def _stored_at_least(pool: Any, topic: str, count: int) -> bool:
    return await stored_total(pool, topic) >= count
