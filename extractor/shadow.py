"""The shadow copy: a deterministic sample of transactions, produced to Kafka without slowing the live path.

`ShadowSample` decides by a hash of the sample key (the transaction id, or an entity such as the card
token, so that a sampled card's whole history reaches the shadow tier): the same transactions on every
run and every host. `ShadowProducer` wraps an idempotent confluent-kafka producer whose local queue is
bounded: a full queue drops the copy and counts it, and a copy Kafka never acknowledged within the
message timeout counts as dropped too. Delivery reports are served by a thread of its own, so the event
loop only ever calls the non-blocking `produce`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from protos.rtscore.v1 import extractor_pb2, frame_pb2
from rtscore.errors import InvalidArgument

log = logging.getLogger(__name__)
SAMPLE_KEYS = ("transaction", "card_token", "email", "device_id", "ip", "merchant_id")
_SPACE = 1 << 64


class ShadowSample:
    """A fraction of transactions, chosen by a stable 64-bit hash of the sample key."""

    def __init__(self, fraction: float, key: str = "transaction") -> None:
        if not 0.0 <= fraction <= 1.0:
            raise InvalidArgument(f"shadow fraction {fraction} is not between 0 and 1")
        if key not in SAMPLE_KEYS:
            raise InvalidArgument(f"shadow key {key!r} is not one of {', '.join(SAMPLE_KEYS)}")
        self.fraction = fraction
        self.key = key
        self._field = "id" if key == "transaction" else key
        self._threshold = min(_SPACE, int(fraction * _SPACE))

    def key_of(self, tx: extractor_pb2.Transaction) -> str:
        """The value the sample is keyed by (also the Kafka record key)."""
        value: str = getattr(tx, self._field)
        return value

    def takes(self, key: str) -> bool:
        """Whether the key's transactions are in the sample."""
        digest = hashlib.blake2b(key.encode(), digest_size=8, person=b"rtscore-shadow").digest()
        return int.from_bytes(digest, "big") < self._threshold


def shadow_record(
    tx: extractor_pb2.Transaction,
    features: frame_pb2.Frame,
    decision: extractor_pb2.Decision,
    *,
    sample_key: str,
    spec_name: str,
    spec_sha256: str,
    environment: str = "",
    pool: str = "",
    decided_at: Timestamp | None = None,
) -> extractor_pb2.ShadowRecord:
    """The Kafka payload of one sampled transaction."""
    record = extractor_pb2.ShadowRecord(
        transaction=tx, features=features, decision=decision, environment=environment, pool=pool,
        sample_key=sample_key, spec_name=spec_name, spec_sha256=spec_sha256,
    )  # fmt: skip
    if decided_at is None:
        record.decided_at.GetCurrentTime()
    else:
        record.decided_at.CopyFrom(decided_at)
    return record


@dataclass
class ShadowCounts:
    """What happened to the copies offered so far."""

    offered: int = 0
    delivered: int = 0
    dropped_full: int = 0
    failed: int = 0

    @property
    def dropped(self) -> int:
        """Copies that will never reach Kafka: the queue was full, or delivery failed."""
        return self.dropped_full + self.failed


class ShadowProducer:
    """An idempotent producer with a bounded queue; `offer` never blocks. `start`/`close` are idempotent."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        queue_max: int = 20_000,
        message_timeout_ms: int = 30_000,
        linger_ms: int = 5,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.counts = ShadowCounts()
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "queue.buffering.max.messages": queue_max,
            "linger.ms": linger_ms,
            "message.timeout.ms": message_timeout_ms,
            "compression.type": "lz4",
            "logger": logging.getLogger("rtscore.shadow.kafka"),
            **(config or {}),
        }
        self._producer: Any = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> ShadowProducer:
        """Create the producer and its delivery-report thread."""
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(self._config)
            self._stop.clear()
            self._poller = threading.Thread(target=self._serve_reports, name="rtscore-shadow", daemon=True)
            self._poller.start()
        return self

    def offer(self, key: str, value: bytes) -> bool:
        """Queue one copy; False (and counted) when the local queue is full or the producer is closed."""
        self.counts.offered += 1
        producer = self._producer
        if producer is None:
            self.counts.dropped_full += 1
            return False
        try:
            producer.produce(self.topic, value=value, key=key.encode(), on_delivery=self._delivered)
        except BufferError:
            self.counts.dropped_full += 1
            return False
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within `timeout_s`; what is left counts as dropped."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
        left = producer.flush(timeout_s)
        self.counts.failed += left

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            producer = self._producer
            if producer is None:
                return
            producer.poll(0.1)

    def _delivered(self, err: Any, _message: Any) -> None:
        if err is None:
            self.counts.delivered += 1
        else:
            self.counts.failed += 1
            if self.counts.failed == 1 or self.counts.failed % 1000 == 0:
                log.warning(
                    "shadow copies not delivered", extra={"failed": self.counts.failed, "error": str(err)}
                )
