"""One extractor under steady load with three scorers, a private Redis and a private Kafka, while
things break: a scorer is SIGKILLed, Kafka is stopped for 30 s, Redis is stopped and restarted.
Not one call may fail; shadow copies are dropped and counted while Kafka is away and resume after;
velocity falls back to the extractor's memory while Redis is away and returns to Redis by itself."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from extractor.transactions import transaction_from_json
from protos.rtscore.v1 import extractor_pb2, extractor_pb2_grpc
from rtscore.localservices import LocalServices, LocalServicesSettings
from rtscore.localservices.kafka import KafkaBroker
from rtscore.localservices.processes import free_port
from tests.conftest import REPO_ROOT
from tests.integration.extractor_processes import Served, fraud_files, metric, scorer, started
from tests.integration.redis_fixtures import PrivateRedis

__all__ = ["fraud_files", "started"]
pytestmark = [pytest.mark.services, pytest.mark.slow]
# Calls per second, open loop: a rate every host of this kind sustains with the test's own Python client,
# three scorers, Kafka and Redis on its two vCPUs. On a slow host 500/s is past the extractor's capacity
# (calls then reach the scorers with no deadline left), which is a benchmark's question, not this test's.
RATE = 250
KAFKA_DOWN_S = 30.0
RESUME_WITHIN_S = 5.0  # copies reach Kafka again this soon after the broker answers


class PrivateKafka:
    """A broker of this test's own on free ports, stopped and restarted on the same ports and data."""

    def __init__(self, home: Path) -> None:
        settings = LocalServicesSettings(kafka_bootstrap=None, start_timeout_s=90, stop_timeout_s=10)
        self.broker = KafkaBroker(home, LocalServices(REPO_ROOT).kafka_libs, settings)
        self.port, self.controller = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.pid: int | None = None

    def start(self) -> None:
        self.pid = self.broker.start(self.port, self.controller).pid

    def stop(self) -> None:
        self.broker.stop(self.pid)
        self.pid = None


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    broker = PrivateKafka(tmp_path / "kafka")
    yield broker
    broker.stop()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@dataclass
class Load:
    """Open-loop Evaluate calls at a fixed rate; every outcome kept."""

    stub: extractor_pb2_grpc.ExtractorStub
    transactions: list[extractor_pb2.Transaction]
    failures: list[str] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    done: int = 0
    sent: int = 0

    async def run(self, until: asyncio.Event) -> None:
        """Send until `until` is set, then wait for every answer."""
        interval = 1.0 / RATE
        began = time.monotonic()
        tasks = []
        i = 0
        while not until.is_set():
            delay = began + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tx = self.transactions[i % len(self.transactions)]
            if i >= len(self.transactions):  # the file again, under new ids
                again = extractor_pb2.Transaction()
                again.CopyFrom(tx)
                again.id = f"{tx.id}-r{i // len(self.transactions)}"
                tx = again
            self.sent_at[tx.id] = time.monotonic()
            tasks.append(asyncio.ensure_future(self._one(tx)))
            i += 1
        await asyncio.gather(*tasks)
        self.sent = i

    async def _one(self, tx: extractor_pb2.Transaction) -> None:
        try:
            await self.stub.Evaluate(tx, timeout=2.0)
        except grpc.aio.AioRpcError as err:
            self.failures.append(f"{err.code().name}: {err.details()}")
        self.done += 1


def _copies(bootstrap: str, topic: str, timeout_s: float) -> list[extractor_pb2.ShadowRecord]:
    """Every record in `topic`, each partition read from its start to its end offset at the time of the
    call. Partitions are assigned, not subscribed: a first consumer group on a just restarted broker
    waits for its coordinator, and an empty poll then does not mean the topic was read."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "enable.auto.commit": False})  # fmt: skip
    deadline = time.monotonic() + timeout_s
    try:
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        unread = {p for p, end in ends.items() if end > 0}
        records: list[extractor_pb2.ShadowRecord] = []
        while unread and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                value, offset = message.value(), message.offset()
                if message.error() is None and value is not None and offset is not None:
                    records.append(extractor_pb2.ShadowRecord.FromString(value))
                    if offset >= ends[message.partition()] - 1:
                        unread.discard(message.partition())
    finally:
        consumer.close()
    assert not unread, f"partitions {sorted(unread)} of {topic} not read to {ends} within {timeout_s:.0f}s"
    return records


def _resumed(port: int, delivered_before: float, within_s: float) -> float | None:
    """Seconds until the count of delivered copies passes `delivered_before`; None if not within."""
    began = time.monotonic()
    while time.monotonic() - began < within_s:
        if metric(port, "rtscore_extractor_shadow_delivered") > delivered_before:
            return time.monotonic() - began
        time.sleep(0.2)
    return None


def _story(extractor: Served, scorers: list[Served]) -> str:
    """What the processes logged, for a failure's message: the extractor's own lines (the producer's
    connection errors while Kafka is away left out, they would fill it) and each scorer's warnings."""
    own = [line for line in extractor.stderr().splitlines() if "rdkafka" not in line]
    lines = [f"extractor: {line}" for line in own[-40:]]
    for i, served in enumerate(scorers):
        warned = [line for line in served.stderr().splitlines() if '"level": "warning"' in line
                  or '"level": "error"' in line]  # fmt: skip
        lines += [f"scorer {i} ({served.target}): {line}" for line in warned[-10:]]
    return "\n".join(lines)


async def test_extractor_rides_out_a_lost_scorer_kafka_and_redis_outages(
    fraud_files: tuple[Path, Path],
    tmp_path: Path,
    started: list[Served],
    kafka: PrivateKafka,
    redis: PrivateRedis,
) -> None:
    bundle, traffic = fraud_files
    with ThreadPoolExecutor(4) as pool:
        booting = pool.submit(kafka.start)
        scorers = list(pool.map(lambda i: scorer(bundle, tmp_path / "cache"), range(3)))
        started.extend(scorers)
        booting.result()
    topic = "shadow-scenario"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)
    metrics_port = free_port()
    extractor = Served(
        "extractor", "serve", "--scorers", ",".join(s.target for s in scorers), "--model", "fraud",
        "--velocity", "redis", "--redis-url", redis.url, "--shadow-topic", topic, "--shadow-fraction", "1",
        "--shadow-key", "card_token", "--kafka-bootstrap", kafka.bootstrap,
        "--metrics-port", str(metrics_port), "--score-timeout-ms", "1000",
        "--no-dense-frames",  # one column per feature here; the service tests send the default dense block
        env={"RTSCORE_EXTRACTOR_SHADOW_QUEUE_MAX": "1000", "RTSCORE_EXTRACTOR_VELOCITY_RETRY_S": "0.5"},
    )  # fmt: skip
    started.append(extractor)
    with traffic.open() as handle:
        transactions = [transaction_from_json(json.loads(line)) for line in handle]

    async with grpc.aio.insecure_channel(extractor.target) as channel:
        load = Load(extractor_pb2_grpc.ExtractorStub(channel), transactions)
        finish = asyncio.Event()
        running = asyncio.ensure_future(load.run(finish))
        await asyncio.sleep(2)
        scorers[0].proc.kill()  # SIGKILL: its in-flight calls fail over to the other two
        await asyncio.sleep(1)
        await asyncio.to_thread(kafka.stop)
        kafka_stopped = time.monotonic()
        await asyncio.to_thread(redis.stop)
        await asyncio.sleep(3)
        fallbacks_while_down = metric(metrics_port, "rtscore_extractor_velocity_fallbacks")
        await asyncio.to_thread(redis.start)
        await asyncio.sleep(1)
        fallbacks_after_recovery = metric(metrics_port, "rtscore_extractor_velocity_fallbacks")
        await asyncio.sleep(2)
        recovered = metric(metrics_port, "rtscore_extractor_velocity_fallbacks") - fallbacks_after_recovery
        await asyncio.sleep(max(0.0, KAFKA_DOWN_S - (time.monotonic() - kafka_stopped)))
        dropped_during_outage = metric(metrics_port, "rtscore_extractor_shadow_dropped")
        delivered_before = metric(metrics_port, "rtscore_extractor_shadow_delivered")
        await asyncio.to_thread(kafka.start)
        kafka_back = time.monotonic()
        resumed_after = await asyncio.to_thread(_resumed, metrics_port, delivered_before, RESUME_WITHIN_S)
        await asyncio.sleep(3)  # copies of transactions sent once deliveries resumed
        finish.set()
        await running

    assert load.failures == [], _story(extractor, scorers)
    assert load.done == load.sent > KAFKA_DOWN_S * RATE
    assert fallbacks_while_down > RATE  # every call while Redis was away, from memory
    # Back on Redis by itself: most calls, where an extractor stuck on memory would fall back on all. On
    # a starved host a Redis call may still outlast its 20 ms and fall back (with two busy loops beside
    # the test, a quarter of them did).
    assert recovered < 0.5 * 2 * RATE
    assert dropped_during_outage > 0
    assert resumed_after is not None, f"no copy delivered within {RESUME_WITHIN_S}s of Kafka's return"
    assert extractor.stop() == 0
    copies = _copies(kafka.bootstrap, topic, timeout_s=30)
    resumed = kafka_back + resumed_after
    late = [c for c in copies if load.sent_at.get(c.transaction.id, 0.0) > resumed]
    assert late, f"no copy of a call sent after deliveries resumed; {len(copies)} copies in all"
    assert len(copies) < load.done  # what was dropped is missing, not duplicated
    assert len({c.transaction.id for c in copies}) == len(copies)  # idempotent producer: no duplicates
    record = late[-1]
    assert record.sample_key == "card_token"
    assert record.features.rows == 1
    assert record.decision.transaction_id == record.transaction.id
