"""The plain reference computation the velocity stores are checked against: a scan of every event."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from extractor.velocity import VelocityEvent, VelocityPlan


def reference_values(plan: VelocityPlan, events: Iterable[VelocityEvent]) -> list[list[float]]:
    """Per event, in arrival order: the values over every earlier arrival of the same entity."""
    history: dict[tuple[int, str], dict[str, tuple[int, float, str]]] = defaultdict(dict)
    results = []
    for event in events:
        t = event.time_ms
        values: list[float] = []
        for index, (group, (entity, _)) in enumerate(zip(plan.groups, event.keys, strict=True)):
            seen = history[(index, entity)] if entity else {}
            for window in group.windows_ms:
                inside = [
                    (amount, value)
                    for tx_id, (time, amount, value) in seen.items()
                    if t - window < time <= t and tx_id != event.tx_id
                ]
                if group.count:
                    values.append(float(len(inside)))
                if group.sum:
                    values.append(sum(amount for amount, _ in inside))
                if group.distinct is not None:
                    values.append(float(len({value for _, value in inside})))
        for index, (entity, value) in enumerate(event.keys):
            if entity:
                history[(index, entity)].setdefault(event.tx_id, (t, event.amount, value))
        results.append(values)
    return results


def generated_events(count: int, seed: int) -> tuple[VelocityPlan, list[VelocityEvent]]:
    """The default spec's plan and the velocity events of `count` generated transactions (arrival order)."""
    from extractor.features import FeatureExtractor
    from extractor.generate import GenerateOptions, generate
    from extractor.spec import load_spec
    from extractor.transactions import transaction_from_json

    loaded = load_spec()
    features = FeatureExtractor(loaded)
    lines = generate(GenerateOptions(count=count, seed=seed), loaded.spec)
    events = []
    for line in lines:
        tx = transaction_from_json(line)
        events.append(features.prepare(tx).event)
    return features.plan, events
