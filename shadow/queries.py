"""What `rtscore shadow scores|status|label` read and write: stored rows, lag per partition, labels."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from rtscore.errors import InvalidArgument, Unavailable
from shadow.db import connect_pool
from shadow.settings import ShadowSettings


async def score_rows(dsn: str, name: str, version: int, limit: int) -> list[dict[str, Any]]:
    """The newest stored rows of name@version."""
    if limit <= 0:
        raise InvalidArgument(f"--limit must be positive, got {limit}")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT * FROM shadow_scores WHERE model = $1 AND version = $2"
            ' ORDER BY scored_at DESC, "offset" DESC LIMIT $3',
            name,
            version,
            limit,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's high watermark, asked of the broker; Unavailable when it does not answer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "rtscore-shadow-status"})
    try:
        meta = consumer.list_topics(topic, timeout=10)
        partitions = meta.topics[topic].partitions if topic in meta.topics else {}
        out = {}
        for number in partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=10)
            out[number] = high
        return out
    except KafkaException as err:
        raise Unavailable(f"Kafka at {bootstrap} did not answer for {topic!r}: {err.args[0].str()}") from None
    finally:
        consumer.close()


async def status(settings: ShadowSettings) -> dict[str, Any]:
    """Lag per partition (stored offset vs the broker's high watermark), rows per model, counts."""
    pool = await connect_pool(settings.database_url, max_size=1)
    try:
        stored = await pool.fetch(
            "SELECT partition, next_offset, dead_lettered, duplicates, updated_at FROM shadow_offsets"
            " WHERE group_id = $1 AND topic = $2 ORDER BY partition",
            settings.group,
            settings.topic,
        )
        models = await pool.fetch(
            "SELECT model, version, count(*) AS rows, max(scored_at) AS last_scored_at FROM shadow_scores"
            " WHERE topic = $1 GROUP BY model, version ORDER BY model, version",
            settings.topic,
        )
    finally:
        await pool.close()
    highs = await asyncio.to_thread(high_watermarks, settings.kafka_bootstrap, settings.topic)
    by_partition = {r["partition"]: r for r in stored}
    partitions = []
    for number in sorted(set(highs) | set(by_partition)):
        row = by_partition.get(number)
        next_offset = row["next_offset"] if row else 0
        high = highs.get(number, 0)
        partitions.append(
            {"partition": number, "next_offset": next_offset, "high": high, "lag": high - next_offset}
        )
    return {
        "group": settings.group,
        "topic": settings.topic,
        "partitions": partitions,
        "models": [dict(m) for m in models],
        "dead_lettered": sum(r["dead_lettered"] for r in stored),
        "duplicates": sum(r["duplicates"] for r in stored),
    }


def read_labels(path: Path) -> list[tuple[str, bool]]:
    """JSON lines of {"transaction_id": ..., "fraud": true|false}; a bad line is named with its number."""
    labels = []
    with path.open() as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                txn, fraud = item["transaction_id"], item["fraud"]
            except (ValueError, KeyError, TypeError) as err:
                raise InvalidArgument(f"{path}:{number}: expected {{transaction_id, fraud}}: {err}") from err
            if not isinstance(txn, str) or not txn or not isinstance(fraud, bool):
                raise InvalidArgument(f"{path}:{number}: transaction_id must be text and fraud true or false")
            labels.append((txn, fraud))
    return labels


async def load_labels(dsn: str, path: Path) -> int:
    """Store labels (a later label for the same transaction replaces the earlier one); returns how many."""
    labels = read_labels(path)
    pool = await connect_pool(dsn, max_size=1)
    try:
        await pool.execute(
            "INSERT INTO shadow_labels (transaction_id, fraud) SELECT * FROM unnest($1::text[], $2::bool[])"
            " ON CONFLICT (transaction_id) DO UPDATE SET fraud = EXCLUDED.fraud, labelled_at = now()",
            [t for t, _ in labels],
            [f for _, f in labels],
        )
    finally:
        await pool.close()
    return len(labels)
