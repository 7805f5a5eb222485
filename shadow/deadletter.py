"""The dead-letter topic: poison records with their origin and reason in Kafka Connect's headers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shadow.errors import PoisonRecord
from shadow.records import Delivery

# Kafka Connect's errors.deadletterqueue.context.headers.enable names, so existing tooling reads them.
PREFIX = "__connect.errors."


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be scored, and why."""

    delivery: Delivery
    error: PoisonRecord
    stage: str


def headers(letter: DeadLetter, group: str) -> list[tuple[str, str | bytes | None]]:
    """The `__connect.errors.*` headers of one dead letter."""
    d = letter.delivery
    values = {
        "topic": d.topic,
        "partition": str(d.partition),
        "offset": str(d.offset),
        "connector.name": group,
        "stage": letter.stage,
        "class.name": "rtscore.v1.ShadowRecord",
        "exception.class.name": f"{type(letter.error).__module__}.{type(letter.error).__qualname__}",
        "exception.message": str(letter.error),
        "rtscore.kind": letter.error.kind,
    }
    return [(PREFIX + key, value.encode()) for key, value in values.items()]


class DeadLetterProducer:
    """Sends dead letters and waits until the broker has them, before their offsets are stored."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.topic = topic
        self.group = group
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
        )

    async def send(self, letters: Sequence[DeadLetter], timeout_s: float = 30.0) -> None:
        """Produce every letter and flush; a delivery failure raises (retryable) KafkaException."""
        if not letters:
            return
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for letter in letters:
            d = letter.delivery
            self._producer.produce(
                self.topic,
                value=d.value,
                key=d.key,
                headers=headers(letter, self.group),
                on_delivery=delivered,
            )
        left = await asyncio.to_thread(self._producer.flush, timeout_s)
        if failures:
            raise KafkaException(failures[0])
        if left:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{left} dead letters not delivered"))

    def close(self) -> None:
        """Deliver what is queued (briefly) and let go."""
        self._producer.flush(5.0)
