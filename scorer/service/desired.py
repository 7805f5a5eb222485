"""Desired state: make the hosted models match a list of specs (from the command line or a registry)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from rtscore.errors import RtscoreError
from scorer.service.core import ScorerCore
from scorer.service.model import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What one reconciliation changed, and what it could not."""

    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _stale(core: ScorerCore, spec: ModelSpec) -> bool:
    hosted = next((h for h in core.table.models() if h.name == spec.name), None)
    if hosted is None:
        return True
    return hosted.path != spec.path or bool(spec.version and spec.version != hosted.version)


async def reconcile(core: ScorerCore, desired: Sequence[ModelSpec]) -> ReconcileReport:
    """Load what is missing or changed (swapping live), unload what is no longer wanted.

    A spec that fails to load is reported and its current version, if any, keeps serving.
    """
    report = ReconcileReport()
    wanted = {spec.name: spec for spec in desired}
    for spec in wanted.values():
        if not _stale(core, spec):
            continue
        try:
            hosted = await core.load(spec.name, spec.version, spec.path, spec.canary)
        except RtscoreError as err:
            log.warning("desired model not loaded", extra={"model": spec.name, "error": str(err)})
            report.failed[spec.name] = str(err)
            continue
        report.loaded.append(hosted.ref)
    for hosted in core.table.models():
        if hosted.name not in wanted:
            report.unloaded.append((await core.unload(hosted.name)).ref)
    return report
