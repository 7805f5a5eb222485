"""Shadow worker throughput and lag: a real registry, Kafka and Postgres, one worker in this process.

Two phases per model count: a backlog of N ShadowRecords drained as fast as one worker can (records/s,
rows written/s, per-batch score and write times), then records produced at a steady rate while the
worker keeps up (consumer lag sampled every 0.25 s). The bundle is deployed under K model names, so one
copy is loaded and every batch is scored K times, as K shadow models of that size would be.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import machine_info
from shadow import metrics


async def _register(address: str, token: str, name: str, bundle: Path) -> None:
    import grpc

    from protos.rtscore.v1 import registry_pb2 as pb
    from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc

    data = await asyncio.to_thread(bundle.read_bytes)
    head = pb.RegisterHeader(name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    chunks = [pb.RegisterChunk(header=head)]
    chunks += [pb.RegisterChunk(data=data[i : i + (4 << 20)]) for i in range(0, len(data), 4 << 20)]
    metadata = [("authorization", f"Bearer {token}")]
    options = [("grpc.max_send_message_length", 16 << 20)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.RegistryStub(channel)
        await stub.RegisterVersion(iter(chunks), metadata=metadata, timeout=600)
        deploy = pb.DeployRequest(
            name=name, version=1, environment="integration", role="shadow", reason="bench"
        )
        await stub.Deploy(deploy, metadata=metadata, timeout=60)


def _records(frame_json: Path, count: int) -> list[bytes]:
    from google.protobuf.timestamp_pb2 import Timestamp

    from protos.rtscore.v1 import extractor_pb2, frame_pb2

    frame = json.loads(frame_json.read_text())
    names = [f["name"] for f in frame["schema"]["fields"]]
    x = np.asarray(frame["rows"], dtype="<f8")
    stamp = Timestamp()
    stamp.GetCurrentTime()
    out = []
    for i in range(count):
        txn = f"bench-{i:08d}"
        out.append(
            extractor_pb2.ShadowRecord(
                transaction=extractor_pb2.Transaction(id=txn, event_time=stamp),
                features=frame_pb2.Frame(
                    rows=1, dense=frame_pb2.DenseDoubles(names=names, values=x[i % len(x)].tobytes())
                ),
                decision=extractor_pb2.Decision(transaction_id=txn, score=0.5, model="champion", version="1"),
            ).SerializeToString()
        )
    return out


def _produce(
    bootstrap: str, topic: str, values: list[bytes], rate: float | None, acked: list[int] | None = None
) -> None:
    """Send values (at rate records/s, if given); acked[0] counts what the broker has acknowledged."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    counter = acked if acked is not None else [0]

    def delivered(err: object, _msg: object) -> None:
        if err is None:
            counter[0] += 1

    started = time.monotonic()
    for i, value in enumerate(values):
        producer.produce(topic, value=value, on_delivery=delivered)
        if rate is not None and i % 50 == 49:
            ahead = (i + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            producer.poll(0)
        elif i % 10_000 == 9_999:
            producer.poll(0)
    producer.flush(60)


async def _stored(pool: Any, topic: str) -> int:
    total = await pool.fetchval(
        "SELECT COALESCE(sum(next_offset), 0) FROM shadow_offsets WHERE topic = $1", topic
    )
    return int(total)


def _totals(histogram: Any) -> tuple[float, float]:
    """(sum, count) of a prometheus histogram so far."""
    samples = {s.name: s.value for m in histogram.collect() for s in m.samples}
    return samples.get(f"{histogram._name}_sum", 0.0), samples.get(f"{histogram._name}_count", 0.0)


def _mean_since(histogram: Any, before: tuple[float, float]) -> float:
    total, count = _totals(histogram)
    return (total - before[0]) / (count - before[1]) if count > before[1] else 0.0


async def _phase(
    settings: Any, pool: Any, bootstrap: str, values: list[bytes], rate: float | None
) -> dict[str, Any]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from shadow.runner import run

    topic = f"rtscore-shadow-bench-{secrets.token_hex(5)}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=4)]).values():
        future.result(30)
    settings = settings.model_copy(update={"topic": topic, "group": topic})
    lags: list[int] = []
    try:
        if rate is None:
            await asyncio.to_thread(_produce, bootstrap, topic, values, None)
        stop = asyncio.Event()
        worker = asyncio.create_task(run(settings, stop))
        acked = [0]
        producing = (
            asyncio.create_task(asyncio.to_thread(_produce, bootstrap, topic, values, rate, acked))
            if rate
            else None
        )
        sent_started = time.monotonic()
        sent_at: list[float] = []
        if producing is not None:
            producing.add_done_callback(lambda _task: sent_at.append(time.monotonic()))
        first_at: float | None = None
        while True:
            stored = await _stored(pool, topic)
            now = time.monotonic()
            if stored and first_at is None:
                first_at = now
            if rate is not None:
                lags.append(max(acked[0] - stored, 0))  # acknowledged by the broker, not yet stored
            if stored >= len(values):
                break
            if worker.done():
                worker.result()
            await asyncio.sleep(0.25 if rate else 0.05)
        finished = time.monotonic()
        stop.set()
        await worker
        if producing is not None:
            await producing
    finally:
        for future in admin.delete_topics([topic]).values():
            future.result(30)
    elapsed = finished - (first_at or finished)
    out: dict[str, Any] = {"records": len(values)}
    if rate is None:
        out["records_per_s"] = round(len(values) / elapsed, 1) if elapsed else None
    else:
        out["rate"] = rate
        out["lag_max"] = max(lags)
        out["lag_p50"] = int(np.percentile(lags, 50))
        out["lag_p99"] = int(np.percentile(lags, 99))
        last_sent = sent_at[0] if sent_at else finished
        out["sent_per_s"] = round(len(values) / (last_sent - sent_started), 1)
        out["drained_s_after_last_sent"] = round(finished - last_sent, 2)
    return out


async def bench(
    bundle: Path, frame_json: Path, model_counts: list[int], records: int, rate: float, lag_seconds: float
) -> dict[str, Any]:
    """Throughput and lag of one worker for each count of shadow models."""
    import asyncpg

    from registry.access import create_token
    from registry.db import open_pool
    from registry.server import running_registry
    from registry.settings import RegistrySettings
    from shadow.db import connect_pool
    from shadow.settings import ShadowSettings

    base = ShadowSettings()
    admin = await asyncpg.connect(base.database_url)
    name = f"rtscore_shadow_bench_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = base.database_url.rsplit("/", 1)[0] + "/" + name
    values = await asyncio.to_thread(_records, frame_json, max(records, int(rate * lag_seconds)))
    results: dict[str, Any] = {"machine": machine_info(), "bundle": str(bundle), "runs": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = RegistrySettings(database_url=dsn, port=0, store_dir=Path(tmp) / "store")
            async with running_registry(settings) as registry, open_pool(dsn, max_size=2) as rpool:
                token = await create_token(rpool, "bench", "admin")
                pool = await connect_pool(dsn)
                deployed = 0
                for count in model_counts:
                    while deployed < count:
                        deployed += 1
                        await _register(registry.address, token, f"shadow-{deployed}", bundle)
                    shadow = base.model_copy(
                        update={
                            "database_url": dsn,
                            "registry": registry.address,
                            "token": token,
                            "environment": "integration",
                            "bundle_dir": Path(tmp) / "bundles",
                        }
                    )
                    hists = (metrics.SCORE_SECONDS, metrics.WRITE_SECONDS, metrics.BATCH_SIZE)
                    before = [_totals(h) for h in hists]
                    drained = await _phase(shadow, pool, base.kafka_bootstrap, values[:records], None)
                    drained["rows_per_s"] = round(drained["records_per_s"] * count, 1)
                    score, write, size = (_mean_since(h, was) for h, was in zip(hists, before, strict=True))
                    drained["score_ms_per_batch"] = round(score * 1000, 2)
                    drained["write_ms_per_batch"] = round(write * 1000, 2)
                    drained["records_per_batch"] = round(size, 1)
                    steady = await _phase(
                        shadow, pool, base.kafka_bootstrap, values[: int(rate * lag_seconds)], rate
                    )
                    results["runs"].append({"models": count, "backlog": drained, "steady": steady})
                    print(json.dumps(results["runs"][-1]), flush=True)
                await pool.close()
    finally:
        admin = await asyncpg.connect(base.database_url)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    return results
