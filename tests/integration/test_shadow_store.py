"""Score rows and offsets in one transaction: a worker that lost its partition writes nothing for it."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from shadow.db import connect_pool, migrate
from shadow.store import Committed, PartitionProgress, ScoreRows, ScoreStore
from tests.integration.registry_fixtures import database_url_fixture  # noqa: F401 - fixture used by name

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(name="pool", loop_scope="module", scope="module")
async def pool_fixture(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect_pool(database_url)
    yield pool
    await pool.close()


def rows(*parts: tuple[int, range], version: int = 1) -> ScoreRows:
    """Rows of fraud@version for the offsets of each (partition, offsets)."""
    out = ScoreRows()
    for partition, offset in ((p, o) for p, offsets in parts for o in offsets):
        out.transaction_id.append(f"t-{partition}-{offset}")
        out.model.append("fraud")
        out.version.append(version)
        out.score.append(0.25)
        out.decision.append(False)
        out.champion_model.append("fraud")
        out.champion_version.append("1")
        out.champion_score.append(0.2)
        out.champion_latency_ms.append(0.1)
        out.latency_ms.append(0.01)
        out.event_time.append(None)
        out.partition.append(partition)
        out.offset.append(offset)
    return out


async def commit(store: ScoreStore, progress: list[PartitionProgress], batch: ScoreRows) -> Committed:
    return await store.commit(progress, batch, environment="qa", threshold=0.5, scored_at=datetime.now(UTC))


async def test_the_worker_whose_partition_moved_on_writes_nothing_for_it(pool: asyncpg.Pool) -> None:
    store = ScoreStore(pool, f"group-{secrets.token_hex(4)}", "records")
    # two workers both believe they own partition 0 from the start (one of them missed a rebalance)
    first = await commit(store, [PartitionProgress(0, None, 10)], rows((0, range(10))))
    both = [PartitionProgress(0, None, 10), PartitionProgress(1, None, 5)]
    stale = await commit(store, both, rows((0, range(10)), (1, range(5)), version=2))
    assert first.lost == {}
    assert stale.lost == {0: 10}
    assert (stale.inserted, stale.duplicates) == (5, 0)
    assert await store.stored_offsets([0, 1, 2]) == {0: 10, 1: 5}
    # the owner carries on from where it stood; a worker that believes an older offset is refused again
    onward = await commit(store, [PartitionProgress(0, 10, 20)], rows((0, range(10, 20))))
    assert onward.lost == {}
    behind = await commit(store, [PartitionProgress(0, 10, 20)], rows((0, range(10, 20)), version=2))
    assert behind.lost == {0: 20}
    written = await pool.fetch(
        "SELECT version, count(*) AS n FROM shadow_scores WHERE partition = 0 GROUP BY version"
    )
    assert {r["version"]: r["n"] for r in written} == {1: 20}


async def test_migrations_apply_once_and_again_as_a_no_op(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn) == []
        names = await conn.fetch("SELECT name FROM shadow_schema_migrations")
    assert [r["name"] for r in names] == ["0001_shadow.sql"]


async def test_status_without_a_broker_is_one_line_and_a_failed_exit(database_url: str) -> None:
    env = {**os.environ, "RTSCORE_DATABASE_URL": database_url, "RTSCORE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "rtscore.cli", "shadow", "status"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = [line for line in done.stderr.splitlines() if not line.startswith("%")]  # librdkafka's own log
    assert done.returncode == 1, done.stderr
    assert len(said) == 1, done.stderr
    assert said[0].startswith("rtscore shadow: Kafka at 127.0.0.1:1 did not answer for 'rtscore.shadow': ")
