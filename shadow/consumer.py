"""The Kafka side of a worker: a consumer group member whose partitions start at offsets stored in Postgres.

Assignment protocol: the classic group protocol with the `cooperative-sticky` assignor (KIP-429). Rebalances
are incremental, so adding or losing a worker moves only the partitions that must move and every other
partition keeps being consumed; it works with any broker since 2.4 and with static membership (KIP-345,
`group.instance.id`), which lets a restarted worker take its partitions back at once. The KIP-848 `consumer`
protocol would also be incremental, but needs a 4.x broker and does not yet take every client setting this
tier relies on, so the classic one is the default for now.

`consume` blocks, so it runs in a thread; the rebalance callbacks run in that thread too, inside `consume`,
and read the stored offsets through the event loop (free then, since it is only awaiting the thread).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from shadow.errors import is_retryable
from shadow.store import ScoreStore

log = logging.getLogger(__name__)

# An assigned partition this worker has not written yet: its first batch claims the offset row.
NOT_STORED = None


class GroupConsumer:
    """A member of the shadow group on one topic; knows which partitions it owns and from where."""

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        store: ScoreStore,
        loop: asyncio.AbstractEventLoop,
        *,
        retry_s: float = 0.2,
    ) -> None:
        self.topic = topic
        self.store = store
        self._loop = loop
        self._retry_s = retry_s
        self._closing = False
        # partition -> next offset to read: as stored in Postgres, or where the batch in hand ends
        # (NOT_STORED: nothing stored yet)
        self.owned: dict[int, int | None] = {}
        self._consumer = Consumer(
            {
                **config,
                "partition.assignment.strategy": "cooperative-sticky",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        self._consumer.subscribe(
            [topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    async def batch(self, size: int, timeout_s: float) -> list[Message]:
        """Up to size messages of owned partitions (fewer after timeout_s); errors raised by type."""
        messages: list[Message] = await asyncio.to_thread(self._consumer.consume, size, timeout_s)
        out = []
        for message in messages:
            err = message.error()
            if err is not None:
                if err.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue  # an empty or not yet created topic is not a failure
                exc = KafkaException(err)
                if is_retryable(exc) or not err.fatal():
                    log.warning("consumer: %s", err)
                    continue
                raise exc
            if message.partition() in self.owned:
                out.append(message)
        return out

    def seek(self, partition: int, offset: int) -> None:
        """Read partition again from offset (after another worker was found to have moved it on)."""
        self.owned[partition] = offset
        try:
            self._consumer.seek(TopicPartition(self.topic, partition, offset))
        except KafkaException as err:  # not fetching yet: the next lost batch seeks again
            log.warning("seek of partition %d to %d failed: %s", partition, offset, err)

    def positions(self) -> dict[int, tuple[int, int]]:
        """Per owned partition: (next offset to read, -1 before the first batch; the high watermark)."""
        out = {}
        for partition, stored in list(self.owned.items()):
            try:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, partition), cached=True
                )
            except KafkaException:
                continue
            out[partition] = (-1 if stored is None else stored, high)
        return out

    async def close(self) -> None:
        """Leave the group (a static member stays until its session times out) and let go."""
        if self._closing:
            return
        self._closing = True
        await asyncio.to_thread(self._consumer.close)

    def _on_loop(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run a coroutine on the event loop from the consume thread, retrying while the database is away."""
        while True:
            try:
                return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=30)
            except Exception as err:
                if self._closing or not is_retryable(err):
                    raise
                log.warning("reading stored offsets failed (%s); retrying", err)
                time.sleep(self._retry_s)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [p.partition for p in partitions]
        stored: dict[int, int] = self._on_loop(lambda: self.store.stored_offsets(numbers))
        for p in partitions:
            # Kafka's stored position is not ours: the offsets in on_assign are unset until we set them
            p.offset = stored.get(p.partition, OFFSET_INVALID)
            self.owned[p.partition] = stored.get(p.partition, NOT_STORED)
        consumer.incremental_assign(partitions)
        log.info("assigned %s from %s", numbers, [p.offset for p in partitions])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for p in partitions:
            self.owned.pop(p.partition, None)
        consumer.incremental_unassign(partitions)
        numbers = [p.partition for p in partitions]
        log.info("revoked %s", numbers)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoked(consumer, partitions)
