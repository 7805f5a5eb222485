"""The in-process velocity store against the plain reference: generated traffic, late arrivals, edges."""

from __future__ import annotations

import itertools

import pytest

from extractor.spec import load_spec
from extractor.velocity import VelocityEvent, VelocityPlan, VelocityUnavailable
from extractor.velocity.fallback import FallbackVelocityStore
from extractor.velocity.memory import MemoryVelocityStore
from tests.velocity_reference import generated_events, reference_values

MINUTE = 60_000


async def test_memory_store_equals_reference_over_generated_traffic() -> None:
    plan, events = generated_events(10_000, seed=3)
    late = sum(1 for a, b in itertools.pairwise(events) if b.time_ms < a.time_ms)
    assert late > 100, "the generated feed must deliver some events out of order"
    expected = reference_values(plan, events)
    store = MemoryVelocityStore(plan)

    got = [await store.observe(event) for event in events]

    nonzero = sum(1 for row in expected if any(row))
    assert nonzero > len(events) // 2
    for event, want, have in zip(events, expected, got, strict=True):
        assert have == pytest.approx(want, rel=1e-9, abs=1e-9), event.tx_id


def _event(
    plan: VelocityPlan, tx_id: str, minute: float, card: str = "c1", merchant: str = "m1"
) -> VelocityEvent:
    keys = [(card, merchant)] + [("", "")] * (len(plan.groups) - 1)
    return VelocityEvent(int(minute * MINUTE), tx_id, 10.0, tuple(keys))


async def test_window_edges_late_arrivals_and_retries() -> None:
    plan = VelocityPlan(load_spec().spec)
    store = MemoryVelocityStore(plan)
    card = plan.names.index("card_count_10m")
    stream = [
        _event(plan, "a", 0),
        _event(plan, "b", 10),  # exactly 10 minutes after a: a is outside (t - 10m, t]
        _event(plan, "c", 5, merchant="m2"),  # late: sees a (5 min before), not b (after it)
        _event(plan, "b", 10),  # a retried b: b itself left out, recorded once
        _event(plan, "d", 10 + 1 / 60_000),  # one ms later: a out, b and c in
    ]
    got = [await store.observe(e) for e in stream]

    assert [row[card : card + 3] for row in got] == [[0, 0, 0], [0, 0, 0], [1, 10, 1], [1, 10, 1], [2, 20, 2]]
    assert got == reference_values(plan, stream)


async def test_memory_store_forgets_the_least_recently_seen_entity_beyond_its_bound() -> None:
    plan = VelocityPlan(load_spec().spec)
    store = MemoryVelocityStore(plan, max_entities=2)
    for i, card in enumerate(["c1", "c2", "c3"]):
        await store.observe(_event(plan, f"t{i}", i, card=card))

    assert len(store) == 2
    assert (await store.read(_event(plan, "x", 4, card="c1")))[0] == 0  # c1 evicted
    assert (await store.read(_event(plan, "y", 4, card="c3")))[0] == 1


class FlakyPrimary:
    """Stands in for Redis: answers with a marker row, or fails while `down`; counts its calls."""

    def __init__(self, plan: VelocityPlan) -> None:
        self.marker = [-1.0] * len(plan.names)
        self.down = False
        self.calls = 0
        self.url = "redis://flaky"

    async def observe(self, event: VelocityEvent) -> list[float]:
        self.calls += 1
        if self.down:
            raise VelocityUnavailable("down")
        return self.marker


async def test_fallback_answers_from_memory_exactly_as_a_memory_store_fed_every_event() -> None:
    plan, events = generated_events(3_000, seed=5)
    primary = FlakyPrimary(plan)
    store = FallbackVelocityStore(primary, MemoryVelocityStore(plan), retry_after_s=3600.0)  # type: ignore[arg-type]
    alone = MemoryVelocityStore(plan)
    expected = [alone.observe_now(event) for event in events]

    healthy = [await store.observe(event) for event in events[:2_000]]
    primary.down = True
    degraded = [await store.observe(event) for event in events[2_000:]]

    assert all(row is primary.marker for row in healthy)  # Redis answered: its values, not memory's
    # the failing call and the skipped ones after it: memory's values, with the history it recorded
    # while Redis answered, equal to a store that saw every event
    assert degraded == expected[2_000:]
    assert primary.calls == 2_001  # after the failure Redis is skipped for retry_after_s
    assert store.fallbacks == 1_000
