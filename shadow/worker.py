"""One shadow worker's loop: bounded batches off Kafka, scored by every shadow model, written exactly once.

Two batches are in hand at most: while one batch's rows and offsets commit, the next is consumed and
scored. Commits stay in order, so each partition's offsets form one chain in Postgres; a batch whose
commit finds a partition moved on by another worker writes nothing for it and the partition is read again
from the stored offset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from confluent_kafka import Message

from shadow import metrics
from shadow.consumer import GroupConsumer
from shadow.deadletter import DeadLetter, DeadLetterProducer
from shadow.errors import PoisonRecord, is_retryable
from shadow.models import ModelSet
from shadow.records import Delivery, ParsedRecord, parse
from shadow.scoring import Scored, score_records
from shadow.settings import ShadowSettings
from shadow.store import Committed, PartitionProgress, ScoreStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Batch:
    """A scored batch waiting to be stored: where each partition stands, its rows and dead letters."""

    progress: dict[int, PartitionProgress]
    scored: Scored
    letters: list[DeadLetter]


def _delivery(message: Message) -> Delivery:
    return Delivery(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        message.timestamp()[1],
    )


class ShadowWorker:
    """Consumes, scores and writes until stopped; retryable failures wait and retry the same batch."""

    def __init__(
        self,
        settings: ShadowSettings,
        consumer: GroupConsumer,
        store: ScoreStore,
        dead_letters: DeadLetterProducer,
        models: Callable[[], ModelSet],
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.store = store
        self.dead_letters = dead_letters
        self.models = models
        self.batches = 0
        self._executor = ThreadPoolExecutor(settings.score_threads, thread_name_prefix="rtscore-shadow-score")

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until stop is set; the batches in hand are stored first."""
        s = self.settings
        storing: asyncio.Task[Committed] | None = None
        try:
            while not stop.is_set():
                messages = await self.consumer.batch(s.batch_size, s.batch_timeout_s)
                batch = await self.prepare(messages) if messages else None
                if storing is not None:
                    await storing  # one commit at a time, in order
                    storing = None
                if batch is not None:
                    storing = asyncio.create_task(self.store_batch(batch, stop))
                self._observe_lag()
            if storing is not None:
                await storing
        finally:
            if storing is not None and not storing.done():
                storing.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def process(
        self, messages: Sequence[Message], stop: asyncio.Event | None = None
    ) -> Committed | None:
        """Score and store one batch (and its dead letters) exactly once."""
        batch = await self.prepare(messages)
        return await self.store_batch(batch, stop) if batch is not None else None

    async def prepare(self, messages: Sequence[Message]) -> Batch | None:
        """Parse and score messages of owned partitions; their partitions' positions move past them."""
        progress: dict[int, PartitionProgress] = {}
        parsed: list[ParsedRecord] = []
        letters: list[DeadLetter] = []
        owned = self.consumer.owned
        for message in messages:
            delivery = _delivery(message)
            if delivery.partition not in owned:
                continue  # revoked since it was fetched
            expected = owned[delivery.partition]
            if expected is not None and delivery.offset < expected:
                continue  # stored already (a seek back after another worker moved the partition on)
            part = progress.get(delivery.partition)
            if part is None:
                part = progress[delivery.partition] = PartitionProgress(delivery.partition, expected, 0)
            part.next_offset = delivery.offset + 1
            try:
                parsed.append(parse(delivery))
            except PoisonRecord as err:
                letters.append(DeadLetter(delivery, err, "parse"))
        if not progress:
            return None
        for partition, part in progress.items():
            owned[partition] = part.next_offset  # where the next batch starts, if this one commits
        metrics.BATCH_SIZE.observe(len(messages))
        started = time.perf_counter()
        scored = await asyncio.to_thread(
            score_records, parsed, self.models(), self.settings.threshold, self._executor
        )
        metrics.SCORE_SECONDS.observe(time.perf_counter() - started)
        letters += scored.letters
        for letter in letters:
            progress[letter.delivery.partition].dead_lettered += 1
        return Batch(progress, scored, letters)

    async def store_batch(self, batch: Batch, stop: asyncio.Event | None = None) -> Committed:
        """Dead letters to Kafka, then rows and offsets to Postgres in one transaction, retried until done."""
        await self._retrying("kafka", lambda: self.dead_letters.send(batch.letters), stop)
        started = time.perf_counter()
        committed = await self._retrying(
            "postgres",
            lambda: self.store.commit(
                list(batch.progress.values()),
                batch.scored.rows,
                environment=self.settings.environment,
                threshold=self.settings.threshold,
                scored_at=datetime.now(UTC),
            ),
            stop,
        )
        metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
        self._account(batch, committed)
        return committed

    def _account(self, batch: Batch, committed: Committed) -> None:
        self.batches += 1
        for partition, stored in committed.lost.items():
            metrics.LOST_PARTITIONS.inc()
            log.warning(
                "partition %d was moved on to %d by another worker; nothing written for it", partition, stored
            )
            if partition in self.consumer.owned:
                self.consumer.seek(partition, stored)
        if not committed.lost:
            for ref, count in batch.scored.per_model.items():
                metrics.SCORED.labels(ref).inc(count)
        for letter in batch.letters:
            stage = letter.stage
            metrics.DEAD_LETTERED.labels(stage.removeprefix("score:") if ":" in stage else "").inc()
        if committed.duplicates:
            metrics.DUPLICATES.inc(committed.duplicates)

    async def _retrying(
        self, cause: str, attempt: Callable[[], Awaitable[T]], stop: asyncio.Event | None
    ) -> T:
        """attempt() until it succeeds; a retryable failure waits (doubling) and consumption stays paused."""
        delay = self.settings.retry_initial_s
        while True:
            try:
                return await attempt()
            except Exception as err:
                if not is_retryable(err) or (stop is not None and stop.is_set()):
                    raise  # stopping: the batch was not stored, so its records are read again later
                metrics.RETRIES.labels(cause).inc()
                log.warning(
                    "%s unavailable (%s: %s); retrying in %.1fs", cause, type(err).__name__, err, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    def _observe_lag(self) -> None:
        for partition, (position, high) in self.consumer.positions().items():
            if position >= 0 and high >= 0:
                metrics.LAG.labels(str(partition)).set(max(high - position, 0))
