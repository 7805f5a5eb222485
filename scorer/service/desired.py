"""Desired state: make the hosted models match a list of specs (from the command line or a registry)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from rtscore.errors import RtscoreError
from scorer.service.core import ScorerCore
from scorer.service.model import HostedModel, ModelSpec
from scorer.service.table import ModelTable, alias

log = logging.getLogger(__name__)

# Completes a spec before it loads (a registry spec gets its bundle path and canary here); may refuse.
SpecFetcher = Callable[[ModelSpec], Awaitable[ModelSpec]]


@dataclass
class ReconcileReport:
    """What one reconciliation changed, and what it could not (by `name@version`)."""

    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)  # names no longer hosted at all
    replaced: list[str] = field(default_factory=list)  # versions another version of their name replaced
    failed: dict[str, str] = field(default_factory=dict)
    errors: dict[str, RtscoreError] = field(default_factory=dict)


def current_version(table: ModelTable, spec: ModelSpec) -> HostedModel | None:
    """The hosted version that already is what `spec` asks for, if any."""
    if spec.version:
        hosted = table.hosted(spec.ref)
        if hosted is None or (spec.sha256 and hosted.model.sha256 != spec.sha256):
            return None
        return hosted if not spec.path or hosted.path == spec.path else None
    hosted = table.routes().get(spec.name)
    return hosted if hosted is not None and hosted.path == spec.path else None


def _version_order(hosted: HostedModel) -> tuple[int, str]:
    return (int(hosted.version), "") if hosted.version.isdigit() else (-1, hosted.version)


async def reconcile(
    core: ScorerCore, desired: Sequence[ModelSpec], fetch: SpecFetcher | None = None
) -> ReconcileReport:
    """Load what is missing or changed, then switch every name and role alias at once and unload what is
    no longer wanted once its in-flight calls finish.

    A spec that fails (bundle, canary) is reported and whatever served its name or roles keeps serving
    them. A bare name reaches its champion, else its newest hosted version; a spec without roles
    (command line, standalone) is the one version of its name.
    """
    report = ReconcileReport()
    table = core.table
    before_aliases = table.aliases()
    before_routes = table.routes()
    ready: list[tuple[ModelSpec, HostedModel | None]] = []
    for spec in desired:
        hosted = current_version(table, spec)
        if hosted is None:
            try:
                full = await fetch(spec) if fetch is not None else spec
                hosted = await core.prepare(full.name, full.version, full.path, full.canary)
            except RtscoreError as err:
                log.warning("desired model not loaded", extra={"model": spec.ref, "error": str(err)})
                report.failed[spec.ref] = str(err)
                report.errors[spec.ref] = err
            else:
                report.loaded.append(hosted.ref)
        ready.append((spec, hosted))
    active: dict[str, HostedModel] = {}
    aliases: dict[str, HostedModel] = {}
    for spec, hosted in ready:
        if not spec.roles:  # the one version of its name
            kept = hosted or before_routes.get(spec.name)
            if kept is not None:
                active[spec.name] = kept
        for role in spec.roles:
            kept = hosted or before_aliases.get(alias(spec.name, role))
            if kept is not None:
                aliases[alias(spec.name, role)] = kept
    keep = {h.ref: h for h in (*active.values(), *aliases.values())}
    keep.update((h.ref, h) for _, h in ready if h is not None)
    for name in {h.name for h in keep.values()} - active.keys():
        champion = aliases.get(alias(name, "champion"))
        active[name] = champion or max((h for h in keep.values() if h.name == name), key=_version_order)
    dropped = await core.route(list(keep.values()), active, aliases)
    for old in dropped:
        (report.replaced if old.name in active else report.unloaded).append(old.ref)
    return report
