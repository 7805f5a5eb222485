"""The local Kafka really keeps messages in order and remembers committed offsets (confluent-kafka)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.services

MESSAGES = 200


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = f"rtscore-test-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    try:
        yield name
    finally:
        admin.delete_topics([name])[name].result(timeout=30)


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def _read(consumer: Consumer, count: int, timeout_s: float) -> list[tuple[str, str]]:
    read: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while len(read) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None, message.error()
        read.append((message.key().decode(), message.value().decode()))
    return read


def test_produced_messages_are_consumed_in_order_and_commits_are_visible(
    kafka_bootstrap: str, topic: str
) -> None:
    sent = [(f"card-{i % 7}", f"txn-{i:04d}") for i in range(MESSAGES)]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for key, value in sent:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    group = f"rtscore-test-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(kafka_bootstrap, group)
    try:
        consumer.subscribe([topic])
        received = _read(consumer, MESSAGES, timeout_s=60)
        consumer.commit(asynchronous=False)
        committed_here = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        consumer.close()

    assert received == sent
    assert committed_here[0].offset == MESSAGES

    # Another member of the same group sees the commit, which is what a restarted worker relies on.
    successor = _consumer(kafka_bootstrap, group)
    try:
        committed_later = successor.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        successor.close()
    assert committed_later[0].offset == MESSAGES
