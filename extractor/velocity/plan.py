"""What the velocity stores compute: per entity group, count, sum and distinct count over windows.

Semantics, shared by every store and by the tests' reference: the values for a transaction at event
time t are taken over the *other* transactions already recorded for the same entity with event time in
(t - window, t]. Arrival order decides what is recorded; event time decides what falls in a window, so a
late arrival sees the history before its own time, not after. A transaction id is recorded once per
entity (a retried call changes nothing). Events more than `lateness` behind the entity's newest are
trimmed, so a later arrival than that may see less history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from extractor.spec import FeatureSpec, VelocityGroup, duration_ms

# One recorded event of an entity: event time (ms), transaction id, base amount, distinct value.
Row = tuple[int, str, float, str]


@dataclass(frozen=True)
class GroupPlan:
    """One velocity group, compiled: its windows in ms and which aggregates it emits."""

    prefix: str
    entity: str
    windows_ms: tuple[int, ...]
    count: bool
    sum: bool
    distinct: str | None
    span_ms: int
    width: int
    order: tuple[int, ...]  # window indexes, shortest window first

    @classmethod
    def of(cls, group: VelocityGroup) -> GroupPlan:
        """Compile a spec group."""
        windows = tuple(group.windows_ms)
        per_window = int(group.count) + int(group.sum) + int(group.distinct is not None)
        return cls(
            group.prefix, group.entity, windows, group.count, group.sum, group.distinct,
            max(windows), per_window * len(windows),
            tuple(sorted(range(len(windows)), key=lambda i: windows[i])),
        )  # fmt: skip

    def aggregate(self, t: int, own_id: str, rows: Sequence[Row]) -> list[float]:
        """The group's values at time `t` over `rows` (ascending event time), leaving out `own_id`."""
        n = len(self.windows_ms)
        counts = [0] * n
        sums = [0.0] * n
        distincts = [0] * n
        order = self.order
        k = 0
        low = t - self.windows_ms[order[0]]
        count = 0
        total = 0.0
        seen: set[str] = set()
        for time, tx_id, amount, value in reversed(rows):  # newest first
            if time > t or tx_id == own_id:
                continue
            while time <= low:  # this row and all older ones are outside window order[k]
                i = order[k]
                counts[i], sums[i], distincts[i] = count, total, len(seen)
                k += 1
                if k == n:
                    break
                low = t - self.windows_ms[order[k]]
            if k == n:
                break
            count += 1
            total += amount
            seen.add(value)
        for i in order[k:]:
            counts[i], sums[i], distincts[i] = count, total, len(seen)
        out: list[float] = []
        for i in range(n):
            if self.count:
                out.append(float(counts[i]))
            if self.sum:
                out.append(sums[i])
            if self.distinct is not None:
                out.append(float(distincts[i]))
        return out


@dataclass(frozen=True)
class VelocityEvent:
    """A transaction as the velocity stores see it: time, id, base amount, and per group its keys."""

    time_ms: int
    tx_id: str
    amount: float
    # Per group of the plan: (entity value, distinct value); an empty entity is neither read nor recorded.
    keys: tuple[tuple[str, str], ...]


class VelocityPlan:
    """Every velocity group of a spec, with the retention that keeps late arrivals exact."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.groups: tuple[GroupPlan, ...] = tuple(GroupPlan.of(g) for g in spec.velocity)
        self.names: list[str] = [n for g in spec.velocity for n in g.feature_names()]
        self.width = sum(g.width for g in self.groups)
        self.lateness_ms = duration_ms(spec.limits.lateness)
        spans = [g.span_ms for g in self.groups] or [0]
        self.retention_ms = max(spans) + self.lateness_ms
        self.spec_name = spec.name

    def event(self, time_ms: int, tx_id: str, amount: float, fields: Sequence[str]) -> VelocityEvent:
        """An event from the transaction's field values, given in `self.fields()` order."""
        return VelocityEvent(time_ms, tx_id, amount, tuple(zip(fields[0::2], fields[1::2], strict=True)))

    def fields(self) -> list[str]:
        """Transaction fields `event` wants, two per group: the entity, then the distinct field (or "")."""
        out: list[str] = []
        for g in self.groups:
            out += [g.entity, g.distinct or ""]
        return out

    def zeros(self) -> list[float]:
        """The values of an entity with no history."""
        return [0.0] * self.width
