"""A shadow worker in this process: poison records to the dead letters, deployments followed live."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from confluent_kafka import Consumer

from protos.rtscore.v1 import registry_pb2 as pb
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
    FEATURES,
    export_forest,
    fresh_topics,
    produce,
    records,
    rows_per_model,
    send_at,
    shadow_record,
    stored_total,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


async def deploy(team: Team, name: str, version: int, environments: list[str]) -> None:
    for env in environments:
        request = pb.DeployRequest(
            name=name, version=version, environment=env, role="shadow", reason="try it"
        )
        await team.author.call("Deploy", request)


def dead_letters(bootstrap: str, topic: str, count: int) -> list[dict[str, str]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out: list[dict[str, str]] = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers: list[tuple[str, bytes]] = message.headers() or []  # type: ignore[assignment]
            out.append({k: v.decode() for k, v in headers})
    finally:
        consumer.close()
    return out


async def test_poison_is_dead_lettered_and_shadow_deployments_are_followed_within_seconds(
    team: Team, database_url: str, kafka_bootstrap: str, registry: object, tmp_path: Path
) -> None:
    champion = export_forest(tmp_path / "live-1.zip", seed=0, name="live1")
    candidate = export_forest(tmp_path / "live-2.zip", seed=1, name="live2")
    for bundle in (champion, candidate):
        await team.author.register("live", bundle)
    await deploy(team, "live", 1, ["integration"])
    pool = await connect_pool(database_url)
    with fresh_topics(kafka_bootstrap, partitions=2) as (topic, dlq):
        settings = ShadowSettings(
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            registry=registry.address,  # type: ignore[attr-defined]
            token=team.service.token,
            environment="integration",
            topic=topic,
            group=f"{topic}-group",
            bundle_dir=tmp_path / "bundles",
            session_timeout_ms=6000,
            batch_size=500,
        )
        stop = asyncio.Event()
        worker = asyncio.create_task(run(settings, stop))
        try:
            good = records(champion, 300, seed=5, prefix="live")
            row = np.zeros(len(FEATURES))
            poison = [
                ("bad-bytes", b"\xff\x00 not a protobuf"),
                ("bad-dense", shadow_record("bad-dense", row[:3], 0.5, names=FEATURES)),
                ("missing-input", shadow_record("missing-input", row[:7], 0.5, names=FEATURES[:7])),
            ]
            produce(kafka_bootstrap, topic, good[:150] + poison + good[150:])
            await wait_for(lambda: _total_is(pool, topic, 303), 30, "303 records consumed")
            assert await rows_per_model(pool, topic) == {"live@1": 300}
            letters = dead_letters(kafka_bootstrap, dlq, 3)
            kinds = {h["__connect.errors.rtscore.kind"] for h in letters}
            assert kinds == {"parse", "invalid", "features"}
            for h in letters:
                assert h["__connect.errors.topic"] == topic
                assert int(h["__connect.errors.partition"]) in (0, 1)
                assert int(h["__connect.errors.offset"]) >= 0
                assert h["__connect.errors.exception.class.name"] == "shadow.errors.PoisonRecord"
                assert h["__connect.errors.exception.message"]
            assert (
                await pool.fetchval("SELECT sum(dead_lettered) FROM shadow_offsets WHERE topic = $1", topic)
                == 3
            )

            # a deployment added while records flow is scored within 5 s, a retired one stops within 5 s
            flowing = records(champion, 200, seed=6, prefix="flow")
            trickle = asyncio.create_task(send_at(kafka_bootstrap, topic, flowing, 200, repeat=True))
            try:
                await deploy(team, "live", 2, ["integration"])
                took = await wait_for(lambda: _has_rows(pool, topic, 2), 5, "live@2 scored")
                print(f"added deployment scored after {took:.2f}s")
                retire = pb.ChangeRequest(name="live", version=1, environment="integration", reason="done")
                await team.approver.call("Retire", retire)
                retired_at = await pool.fetchval("SELECT clock_timestamp()")
                await asyncio.sleep(5)
                last = await pool.fetchval(
                    "SELECT max(scored_at) FROM shadow_scores WHERE topic = $1 AND version = 1", topic
                )
                newest = await pool.fetchval(
                    "SELECT max(scored_at) FROM shadow_scores WHERE topic = $1", topic
                )
                assert newest > last, "records kept flowing, scored by live@2 alone"
                stopped_after = (last - retired_at).total_seconds()
                print(f"retired deployment last scored {stopped_after:.2f}s after retiring")
                assert stopped_after < 5, f"live@1 was still scored {stopped_after:.1f}s after retiring"
            finally:
                trickle.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await trickle
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)
            await pool.close()


async def _total_is(pool: asyncpg.Pool, topic: str, count: int) -> bool:
    return await stored_total(pool, topic) >= count


async def _has_rows(pool: asyncpg.Pool, topic: str, version: int) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT 1 FROM shadow_scores WHERE topic = $1 AND version = $2 LIMIT 1", topic, version
        )
    )
