"""One shadow worker's loop: a bounded batch off Kafka, scored by every shadow model, written exactly once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
from confluent_kafka import Message

from shadow import metrics
from shadow.consumer import GroupConsumer
from shadow.deadletter import DeadLetter, DeadLetterProducer
from shadow.errors import PoisonRecord, is_retryable
from shadow.models import ModelSet, ShadowModel
from shadow.records import Delivery, ParsedRecord, batch_frame, parse
from shadow.settings import ShadowSettings
from shadow.store import Committed, PartitionProgress, ScoreRows, ScoreStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Scored:
    """A batch after scoring: its rows, its dead letters and how many of them each partition had."""

    rows: ScoreRows = field(default_factory=ScoreRows)
    letters: list[DeadLetter] = field(default_factory=list)
    per_model: dict[str, int] = field(default_factory=dict)


def score_records(records: Sequence[ParsedRecord], models: ModelSet, threshold: float) -> Scored:
    """Every record scored by every model, a frame per feature layout; poison isolated record by record."""
    out = Scored()
    condemned: dict[int, DeadLetter] = {}
    groups: dict[object, list[ParsedRecord]] = {}
    for r in records:
        groups.setdefault(r.layout, []).append(r)
    for group in groups.values():
        carried = batch_frame(group)
        for model in models.models:
            stage = f"score:{model.ref}"
            members: Sequence[ParsedRecord] = group
            frame = carried
            if model.own is not None and any(model.own.applies_to(r) for r in group):
                frame, kept, refused = model.own.frame(group, carried)
                for i, err in refused:
                    condemned.setdefault(id(group[i]), DeadLetter(group[i].delivery, err, stage))
                members = [group[i] for i in kept]
            if not members:
                continue
            try:
                scores, per_row_ms = model.score(frame)
                _append(out.rows, members, model, scores, per_row_ms, threshold)
                out.per_model[model.ref] = out.per_model.get(model.ref, 0) + len(members)
            except PoisonRecord:
                for i, r in enumerate(
                    members
                ):  # slow path, only when a batch fails: find the records at fault
                    try:
                        scores, per_row_ms = model.score(frame.take(np.array([i])))
                    except PoisonRecord as err:
                        condemned.setdefault(id(r), DeadLetter(r.delivery, err, stage))
                        continue
                    _append(out.rows, [r], model, scores, per_row_ms, threshold)
                    out.per_model[model.ref] = out.per_model.get(model.ref, 0) + 1
    out.letters = list(condemned.values())
    return out


def _append(
    rows: ScoreRows,
    group: Sequence[ParsedRecord],
    model: ShadowModel,
    scores: np.ndarray,
    per_row_ms: float,
    threshold: float,
) -> None:
    n = len(group)
    rows.transaction_id += [r.transaction_id for r in group]
    rows.model += [model.name] * n
    rows.version += [model.version] * n
    rows.score += scores.tolist()
    rows.decision += (scores >= threshold).tolist()
    rows.champion_model += [r.champion_model for r in group]
    rows.champion_version += [r.champion_version for r in group]
    rows.champion_score += [r.champion_score for r in group]
    rows.champion_latency_ms += [r.champion_latency_ms for r in group]
    rows.latency_ms += [per_row_ms] * n
    rows.event_time += [r.event_time for r in group]
    rows.partition += [r.delivery.partition for r in group]
    rows.offset += [r.delivery.offset for r in group]


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

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until stop is set; the batch in hand is finished first."""
        s = self.settings
        while not stop.is_set():
            messages = await self.consumer.batch(s.batch_size, s.batch_timeout_s)
            if messages:
                await self.process(messages, stop)
            self._observe_lag()

    async def process(
        self, messages: Sequence[Message], stop: asyncio.Event | None = None
    ) -> Committed | None:
        """Score and store one batch (and its dead letters) exactly once."""
        progress: dict[int, PartitionProgress] = {}
        parsed: list[ParsedRecord] = []
        letters: list[DeadLetter] = []
        owned = self.consumer.owned
        for message in messages:
            delivery = _delivery(message)
            expected = owned.get(delivery.partition)
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
        metrics.BATCH_SIZE.observe(len(messages))
        models = self.models()
        started = time.perf_counter()
        scored = await asyncio.to_thread(score_records, parsed, models, self.settings.threshold)
        metrics.SCORE_SECONDS.observe(time.perf_counter() - started)
        letters += scored.letters
        for letter in letters:
            progress[letter.delivery.partition].dead_lettered += 1
        await self._retrying("kafka", lambda: self.dead_letters.send(letters), stop)
        started = time.perf_counter()
        committed = await self._retrying(
            "postgres",
            lambda: self.store.commit(
                list(progress.values()),
                scored.rows,
                environment=self.settings.environment,
                threshold=self.settings.threshold,
                scored_at=datetime.now(UTC),
            ),
            stop,
        )
        metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
        self._account(progress, committed, scored, letters)
        return committed

    def _account(
        self,
        progress: dict[int, PartitionProgress],
        committed: Committed,
        scored: Scored,
        letters: Sequence[DeadLetter],
    ) -> None:
        self.batches += 1
        for partition, part in progress.items():
            if partition in committed.lost:
                metrics.LOST_PARTITIONS.inc()
                log.warning(
                    "partition %d was moved on to %d by another worker; nothing written for it",
                    partition,
                    committed.lost[partition],
                )
                if partition in self.consumer.owned:
                    self.consumer.seek(partition, committed.lost[partition])
            elif partition in self.consumer.owned:
                self.consumer.owned[partition] = part.next_offset
        if not committed.lost:
            for ref, count in scored.per_model.items():
                metrics.SCORED.labels(ref).inc(count)
        for letter in letters:
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
        for partition, (stored, high) in self.consumer.positions().items():
            if stored >= 0 and high >= 0:
                metrics.LAG.labels(str(partition)).set(max(high - stored, 0))
