"""Scoring a batch of records with every shadow model: a frame per feature layout, models side by side."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from scorer.frame import LeapFrame
from shadow.deadletter import DeadLetter
from shadow.errors import PoisonRecord
from shadow.models import ModelSet, ShadowModel
from shadow.records import ParsedRecord, batch_frame
from shadow.store import ScoreRows


@dataclass
class Scored:
    """A batch after scoring: its rows, its dead letters and how many rows each model gave."""

    rows: ScoreRows = field(default_factory=ScoreRows)
    letters: list[DeadLetter] = field(default_factory=list)
    per_model: dict[str, int] = field(default_factory=dict)


@dataclass
class _ModelPart:
    rows: ScoreRows = field(default_factory=ScoreRows)
    count: int = 0
    refused: list[tuple[ParsedRecord, PoisonRecord]] = field(default_factory=list)


def score_records(
    records: Sequence[ParsedRecord], models: ModelSet, threshold: float, executor: Executor | None = None
) -> Scored:
    """Every record scored by every model; poison isolated record by record.

    With an executor the models of a layout score at once: the forest kernel runs without the GIL.
    """
    out = Scored()
    condemned: dict[int, DeadLetter] = {}
    groups: dict[object, list[ParsedRecord]] = {}
    for r in records:
        groups.setdefault(r.layout, []).append(r)
    for group in groups.values():
        carried = batch_frame(group)
        n = len(models.models)
        args = (models.models, [group] * n, [carried] * n, [threshold] * n)
        if executor is not None and n > 1:
            parts = list(executor.map(_score_model, *args))
        else:
            parts = list(map(_score_model, *args))
        for model, part in zip(models.models, parts, strict=True):
            out.rows.extend(part.rows)
            if part.count:
                out.per_model[model.ref] = out.per_model.get(model.ref, 0) + part.count
            for record, err in part.refused:
                condemned.setdefault(id(record), DeadLetter(record.delivery, err, f"score:{model.ref}"))
    out.letters = list(condemned.values())
    return out


def _score_model(
    model: ShadowModel, group: list[ParsedRecord], carried: LeapFrame, threshold: float
) -> _ModelPart:
    part = _ModelPart()
    members: Sequence[ParsedRecord] = group
    frame = carried
    if model.own is not None and any(model.own.applies_to(r) for r in group):
        frame, kept, refused = model.own.frame(group, carried)
        part.refused += [(group[i], err) for i, err in refused]
        members = [group[i] for i in kept]
    if not members:
        return part
    try:
        scores, per_row_ms = model.score(frame)
        _append(part.rows, members, model, scores, per_row_ms, threshold)
        part.count += len(members)
    except PoisonRecord:
        for i, r in enumerate(members):  # slow path, only when a batch fails: find the records at fault
            try:
                scores, per_row_ms = model.score(frame.take(np.array([i])))
            except PoisonRecord as err:
                part.refused.append((r, err))
                continue
            _append(part.rows, [r], model, scores, per_row_ms, threshold)
            part.count += 1
    return part


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
