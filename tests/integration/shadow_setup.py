"""What the shadow tier's tests share: small forests, ShadowRecords as the extractor sends them, topics."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from confluent_kafka.admin import AdminClient, NewTopic
from google.protobuf.timestamp_pb2 import Timestamp

from protos.rtscore.v1 import extractor_pb2, frame_pb2
from scorer.bundle import load_bundle
from scorer.frame import DataType, Field, LeapFrame
from shadow.models import score_column

FEATURES = [f"f{i}" for i in range(8)]


def training_data(seed: int, rows: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    """Fraud-like rows: a noisy linear signal over FEATURES."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = (x @ rng.normal(size=len(FEATURES)) + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return x, y


def export_forest(out: Path, *, seed: int, name: str, flip: bool = False) -> Path:
    """A small random forest (12 trees, depth 6) as a bundle; flip trains it on inverted labels."""
    from sklearn.ensemble import RandomForestClassifier

    from scorer.export import export_sklearn

    x, y = training_data(0)
    forest = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=seed, n_jobs=1)
    forest.fit(x, 1 - y if flip else y)
    return export_sklearn(forest, out, features=FEATURES, name=name)


def champion_scores(bundle: Path, x: np.ndarray) -> np.ndarray:
    """What the live model says for rows x (the extractor's score)."""
    model = load_bundle(bundle)
    frame = LeapFrame(
        [Field(n, DataType.scalar("double")) for n in FEATURES],
        [np.ascontiguousarray(x[:, i]) for i in range(x.shape[1])],
    )
    column, tensor = score_column(model)
    values = model.transform(frame).column(column)
    return np.asarray(values[:, -1] if tensor else values)


def shadow_record(txn_id: str, row: np.ndarray, score: float, *, names: Sequence[str] = FEATURES) -> bytes:
    """A ShadowRecord made by the extractor's own code: dense features, the champion fraud@1's decision."""
    from extractor.shadow import shadow_record as extractor_record

    stamp = Timestamp()
    stamp.GetCurrentTime()
    if len(row) == len(names):
        features = _encoder(tuple(names)).frame(row.tolist())
    else:  # a malformed frame, as no extractor would send it
        values = row.astype("<f8").tobytes()
        features = frame_pb2.Frame(rows=1, dense=frame_pb2.DenseDoubles(names=list(names), values=values))
    decision = extractor_pb2.Decision(
        transaction_id=txn_id,
        score=score,
        model="fraud",
        version="1",
        timings=extractor_pb2.StageTimings(score_ms=0.2),
    )
    tx = extractor_pb2.Transaction(id=txn_id, event_time=stamp, amount_minor=1000, currency="USD")
    record = extractor_record(
        tx,
        features,
        decision,
        sample_key="transaction",
        spec_name="test",
        spec_sha256="",
        environment="production",
    )
    return record.SerializeToString()


@functools.cache
def _encoder(names: tuple[str, ...]) -> Any:
    from extractor.frames import RowEncoder

    return RowEncoder(list(names), dense=True)


def records(champion: Path, count: int, seed: int, prefix: str) -> list[tuple[str, bytes]]:
    """count (transaction id, ShadowRecord bytes) pairs scored by the champion bundle."""
    x = np.random.default_rng(seed).normal(size=(count, len(FEATURES)))
    scores = champion_scores(champion, x)
    ids = [f"{prefix}-{i:06d}" for i in range(count)]
    return [(t, shadow_record(t, x[i], float(scores[i]))) for i, t in enumerate(ids)]


def produce(bootstrap: str, topic: str, items: Sequence[tuple[str, bytes]]) -> None:
    """Send (key, value) pairs through the extractor's shadow producer; every one must be delivered."""
    from extractor.shadow import ShadowProducer

    producer = ShadowProducer(bootstrap, topic, queue_max=max(len(items), 1_000) + 1_000, linger_ms=20)
    producer.start()
    for key, value in items:
        assert producer.offer(key, value)
    producer.close(timeout_s=60)
    assert producer.counts.delivered == len(items), producer.counts


async def send_at(
    bootstrap: str, topic: str, items: Sequence[tuple[str, bytes]], per_second: float, *, repeat: bool = False
) -> None:
    """Offer items through one shadow producer at about per_second (with repeat: again until cancelled)."""
    from extractor.shadow import ShadowProducer

    producer = ShadowProducer(bootstrap, topic, queue_max=len(items) + 1_000, linger_ms=5).start()
    step = max(int(per_second / 10), 1)
    try:
        while True:
            for start in range(0, len(items), step):
                for key, value in items[start : start + step]:
                    assert producer.offer(key, value)
                await asyncio.sleep(0.1)
            if not repeat:
                break
            items = [(f"{key}r", value) for key, value in items]  # new ids, so new rows
    finally:
        await asyncio.to_thread(producer.close, 30.0)


@contextmanager
def fresh_topics(bootstrap: str, partitions: int) -> Iterator[tuple[str, str]]:
    """A new (records topic, dead-letter topic) pair, deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"rtscore-shadow-test-{uuid.uuid4().hex[:10]}"
    topics = [NewTopic(name, num_partitions=partitions), NewTopic(f"{name}.dlq", num_partitions=1)]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    try:
        yield name, f"{name}.dlq"
    finally:
        for future in admin.delete_topics([name, f"{name}.dlq"]).values():
            future.result(timeout=30)


async def wait_for(check: object, seconds: float, what: str) -> float:
    """Poll an async predicate every 50 ms until it holds; returns the seconds it took."""
    started = time.monotonic()
    while True:
        if await check():  # type: ignore[operator]
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            raise AssertionError(f"{what} did not happen within {seconds:.0f}s")
        await asyncio.sleep(0.05)


async def rows_per_model(pool: asyncpg.Pool, topic: str) -> dict[str, int]:
    """Stored rows of each model version on topic."""
    rows = await pool.fetch(
        "SELECT model || '@' || version AS ref, count(*) AS n FROM shadow_scores WHERE topic = $1 GROUP BY 1",
        topic,
    )
    return {r["ref"]: r["n"] for r in rows}


async def stored_total(pool: asyncpg.Pool, topic: str) -> int:
    """Sum of the next offsets stored for topic: the records consumed, once each."""
    total = await pool.fetchval(
        "SELECT COALESCE(sum(next_offset), 0) FROM shadow_offsets WHERE topic = $1", topic
    )
    return int(total)
