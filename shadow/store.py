"""Score rows and partition offsets in Postgres, written together: exactly once per (transaction, version).

Kafka's "storing offsets outside Kafka": a batch's rows and each of its partitions' next offset commit in one
transaction, and a worker starts a partition from the stored offset when it is assigned. Before writing, the
transaction locks each partition's offset row and compares it with the offset this worker started the batch
from; a partition another worker has moved on since (a rebalance this worker has not noticed yet) gets no
rows from this batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

# Marks an offset row claimed by a batch of the transaction that inserted it; never committed as such.
_CLAIMED = -1

INSERT_SCORES = """
INSERT INTO shadow_scores (transaction_id, model, version, score, decision, champion_model, champion_version,
    champion_score, champion_latency_ms, latency_ms, event_time, partition, "offset",
    environment, threshold, scored_at, topic)
SELECT u.*, $14::text, $15::float8, $16::timestamptz, $17::text
FROM unnest($1::text[], $2::text[], $3::int8[], $4::float8[], $5::bool[], $6::text[], $7::text[],
            $8::float8[], $9::float8[], $10::float8[], $11::timestamptz[], $12::int4[], $13::int8[]) AS u
ON CONFLICT (transaction_id, model, version) DO NOTHING
"""

UPSERT_OFFSETS = """
INSERT INTO shadow_offsets (group_id, topic, partition, next_offset, dead_lettered, duplicates)
SELECT $1, $2, u.* FROM unnest($3::int4[], $4::int8[], $5::int8[], $6::int8[]) AS u
ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,
    dead_lettered = shadow_offsets.dead_lettered + EXCLUDED.dead_lettered,
    duplicates = shadow_offsets.duplicates + EXCLUDED.duplicates, updated_at = now()
"""


@dataclass
class PartitionProgress:
    """One partition's part of a batch: where this worker believes it stands and where the batch ends."""

    partition: int
    expected: int | None
    next_offset: int
    dead_lettered: int = 0


@dataclass
class ScoreRows:
    """A batch's score rows, column by column (the shape unnest takes)."""

    transaction_id: list[str] = field(default_factory=list)
    model: list[str] = field(default_factory=list)
    version: list[int] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    decision: list[bool] = field(default_factory=list)
    champion_model: list[str] = field(default_factory=list)
    champion_version: list[str] = field(default_factory=list)
    champion_score: list[float] = field(default_factory=list)
    champion_latency_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    event_time: list[datetime | None] = field(default_factory=list)
    partition: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.transaction_id)

    def columns(self) -> tuple[list[object], ...]:
        """The columns in INSERT_SCORES order."""
        return (
            self.transaction_id, self.model, self.version, self.score, self.decision,
            self.champion_model, self.champion_version, self.champion_score, self.champion_latency_ms,
            self.latency_ms, self.event_time, self.partition, self.offset,
        )  # type: ignore[return-value]  # fmt: skip

    def extend(self, other: ScoreRows) -> None:
        """Append other's rows."""
        for name, values in vars(self).items():
            values += getattr(other, name)

    def without(self, partitions: set[int]) -> ScoreRows:
        """The rows of every other partition."""
        keep = [i for i, p in enumerate(self.partition) if p not in partitions]
        out = ScoreRows()
        for name, values in vars(self).items():
            setattr(out, name, [values[i] for i in keep])
        return out


@dataclass(frozen=True)
class Committed:
    """What a batch's transaction did."""

    inserted: int
    duplicates: int
    # partitions another worker had moved on: partition -> the offset stored there now
    lost: dict[int, int]


class ScoreStore:
    """The score rows and offsets of one consumer group on one topic."""

    def __init__(self, pool: asyncpg.Pool, group: str, topic: str) -> None:
        self.pool = pool
        self.group = group
        self.topic = topic

    async def stored_offsets(self, partitions: Sequence[int]) -> dict[int, int]:
        """The next offset stored per partition (partitions never written are absent)."""
        rows = await self.pool.fetch(
            "SELECT partition, next_offset FROM shadow_offsets"
            " WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int4[])",
            self.group,
            self.topic,
            list(partitions),
        )
        return {r["partition"]: r["next_offset"] for r in rows}

    async def commit(
        self,
        progress: Sequence[PartitionProgress],
        rows: ScoreRows,
        *,
        environment: str,
        threshold: float,
        scored_at: datetime,
    ) -> Committed:
        """Write rows and every partition's next offset in one transaction, skipping lost partitions."""
        parts = sorted(progress, key=lambda p: p.partition)  # one lock order for every worker
        numbers = [p.partition for p in parts]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO shadow_offsets (group_id, topic, partition, next_offset)"
                " SELECT $1, $2, p, $4 FROM unnest($3::int4[]) AS p ON CONFLICT DO NOTHING",
                self.group,
                self.topic,
                numbers,
                _CLAIMED,
            )
            stored = {
                r["partition"]: r["next_offset"]
                for r in await conn.fetch(
                    "SELECT partition, next_offset FROM shadow_offsets"
                    " WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int4[])"
                    " ORDER BY partition FOR UPDATE",
                    self.group,
                    self.topic,
                    numbers,
                )
            }
            lost = {
                p.partition: stored[p.partition]
                for p in parts
                if stored[p.partition] != (_CLAIMED if p.expected is None else p.expected)
            }
            if lost:
                rows = rows.without(set(lost))
                parts = [p for p in parts if p.partition not in lost]
            inserted = 0
            if len(rows):
                status = await conn.execute(
                    INSERT_SCORES, *rows.columns(), environment, threshold, scored_at, self.topic
                )
                inserted = int(status.rsplit(" ", 1)[-1])
            duplicates = len(rows) - inserted
            if parts:
                # the group's duplicate count lives on its lowest partition's row; status sums them
                await conn.execute(
                    UPSERT_OFFSETS,
                    self.group,
                    self.topic,
                    [p.partition for p in parts],
                    [p.next_offset for p in parts],
                    [p.dead_lettered for p in parts],
                    [duplicates if i == 0 else 0 for i in range(len(parts))],
                )
            else:
                duplicates = 0
        return Committed(inserted, duplicates, lost)
