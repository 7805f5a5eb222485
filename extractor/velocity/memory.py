"""The in-process velocity store: one process's history, bounded in entities and events per entity.

Eviction: beyond `max_entities` the entity seen least recently is forgotten whole; beyond
`max_events` the oldest events (by event time) of an entity are dropped; events older than the plan's
retention (longest window + lateness) behind the event being recorded are trimmed, as in Redis.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict

from extractor.velocity.plan import Row, VelocityEvent, VelocityPlan


class _History:
    """One entity's events, sorted by event time."""

    __slots__ = ("rows", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.rows: list[Row] = []


class MemoryVelocityStore:
    """Velocity state in this process (exact within its bounds; not shared with other processes)."""

    def __init__(self, plan: VelocityPlan, max_entities: int = 200_000, max_events: int = 10_000) -> None:
        self.plan = plan
        self.max_entities = max_entities
        self.max_events = max_events
        self._entities: OrderedDict[tuple[int, str], _History] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entities)

    async def observe(self, event: VelocityEvent) -> list[float]:
        """Values for `event`, then `event` recorded."""
        return self.observe_now(event)

    async def read(self, event: VelocityEvent) -> list[float]:
        """Values for `event` without recording it."""
        return self.read_now(event)

    async def record(self, event: VelocityEvent) -> None:
        """Record `event`."""
        self.record_now(event)

    async def close(self) -> None:
        """Nothing to release."""

    def observe_now(self, event: VelocityEvent) -> list[float]:
        """`observe` without a coroutine, for callers already on the hot path."""
        values = self.read_now(event)
        self.record_now(event)
        return values

    def read_now(self, event: VelocityEvent) -> list[float]:
        """`read` without a coroutine."""
        out: list[float] = []
        t = event.time_ms
        for index, (group, (entity, _value)) in enumerate(zip(self.plan.groups, event.keys, strict=True)):
            history = self._entities.get((index, entity)) if entity else None
            if history is None:
                out += [0.0] * group.width
                continue
            hi = bisect_right(history.times, t)
            lo = bisect_right(history.times, t - group.span_ms, 0, hi)
            out += group.aggregate(t, event.tx_id, history.rows[lo:hi])
        return out

    def record_now(self, event: VelocityEvent) -> None:
        """`record` without a coroutine."""
        t = event.time_ms
        horizon = t - self.plan.retention_ms
        for index, (entity, value) in enumerate(event.keys):
            if not entity:
                continue
            key = (index, entity)
            history = self._entities.get(key)
            if history is None:
                history = self._entities[key] = _History()
                if len(self._entities) > self.max_entities:
                    self._entities.popitem(last=False)
            else:
                self._entities.move_to_end(key)
            at = bisect_right(history.times, t)
            if any(r[1] == event.tx_id for r in history.rows[bisect_right(history.times, t - 1) : at]):
                continue  # this transaction is already recorded for the entity
            history.times.insert(at, t)
            history.rows.insert(at, (t, event.tx_id, event.amount, value))
            stale = bisect_right(history.times, horizon - 1)  # times < horizon, as Redis trims
            excess = len(history.times) - stale - self.max_events
            drop = stale + max(0, excess)
            if drop:
                del history.times[:drop]
                del history.rows[:drop]
