"""A scorer that follows a registry: the pool's desired deployments in, membership heartbeats out.

Desired state arrives through `registry.follow.DeploymentFollower`; each deployment becomes a spec whose
bundle comes from the shared `BundleCache` and whose canary from the registered version, and
`scorer.service.desired.reconcile` makes the table match. Heartbeats announce the endpoint, what it
hosts (with roles and health) and what it refused; a refused version is also logged, counted and, through
the registry, written to the audit log. The registry being away changes nothing that is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import grpc
from prometheus_client import CollectorRegistry, Counter

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.follow import Backoff, BundleCache, DeploymentFollower, RegistryConnection, is_transient
from rtscore.errors import InvalidArgument, RtscoreError, Unavailable
from rtscore.tasks import cancel_and_wait
from scorer.frame import LeapFrame
from scorer.service.canary import Canary, CanaryResult
from scorer.service.core import ScorerCore
from scorer.service.desired import reconcile
from scorer.service.model import HostedModel, ModelSpec
from scorer.service.table import ModelTable

log = logging.getLogger(__name__)


class RefusalRecorder(Protocol):
    """Counts versions the scorer refused to host."""

    def model_refused(self, name: str, version: str, reason: str) -> None:
        """One refusal."""


class RefusalCounter:
    """`rtscore_scorer_model_refusals_total{model, version, reason}` on the scorer's metrics registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counter = Counter(
            "rtscore_scorer_model_refusals",
            "desired versions refused (bundle or canary), by the error's kind",
            ["model", "version", "reason"],
            registry=registry,
        )

    def model_refused(self, name: str, version: str, reason: str) -> None:
        """Count one refusal."""
        self._counter.labels(name, version, reason).inc()


def default_bundle_cache_dir() -> Path:
    """`$RTSCORE_CACHE_DIR/bundles`, else `~/.cache/rtscore/bundles` (beside the compiled forests)."""
    root = os.environ.get("RTSCORE_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "rtscore") / "bundles"


class TableChanges:
    """Core events that wake the heartbeat whenever hosting or health changes."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def model_loaded(self, hosted: HostedModel, seconds: float) -> None:
        """Nothing: the table change that follows wakes the heartbeat."""

    def canary_ran(self, hosted: HostedModel, result: CanaryResult) -> None:
        """Nothing: a health change comes through `models_changed`."""

    async def models_changed(self, table: ModelTable) -> None:
        """Wake the heartbeat."""
        self.changed.set()


def _canary(version: pb.Version) -> Canary | None:
    if not version.canary_frame_json or not version.canary_expected_json:
        return None
    try:
        frame = LeapFrame.from_mleap_json(json.loads(version.canary_frame_json))
        expected = LeapFrame.from_mleap_json(json.loads(version.canary_expected_json))
    except (ValueError, RtscoreError) as err:
        raise InvalidArgument(
            f"{version.name}@{version.version}: registered canary unreadable: {err}"
        ) from err
    return Canary(frame, expected)


def _version_number(version: str) -> int:
    return int(version) if version.isdigit() else 0


class RegistryFollowing:
    """Keeps `core` hosting what the registry deploys to one environment/pool, and announces it."""

    def __init__(
        self,
        core: ScorerCore,
        connection: RegistryConnection,
        *,
        environment: str,
        pool: str,
        endpoint: str,
        cache: BundleCache,
        changes: TableChanges,
        ttl_s: float,
        backoff_max_s: float,
        refusals: Sequence[RefusalRecorder] = (),
    ) -> None:
        self.core = core
        self.connection = connection
        self.environment = environment
        self.pool = pool
        self.endpoint = endpoint
        self.cache = cache
        self.changes = changes
        self.ttl_s = ttl_s
        self._backoff_max_s = backoff_max_s
        self._recorders = refusals
        self._refused: dict[tuple[str, str], RtscoreError] = {}  # (ref, sha256) → why, for good
        self.refused: dict[str, tuple[pb.Deployment, str]] = {}  # ref → (deployment, reason), desired now
        self._versions: dict[tuple[str, str], pb.Version] = {}
        self._channel: grpc.aio.Channel | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.follower: DeploymentFollower | None = None

    async def __aenter__(self) -> RegistryFollowing:
        self._channel = self.connection.channel()
        self._stub = pb_grpc.RegistryStub(self._channel)
        backoff = Backoff(initial=0.1, cap=self._backoff_max_s)
        self.follower = DeploymentFollower(
            self.connection, self.environment, self.pool, self._apply, backoff=backoff, channel=self._channel
        )
        self._tasks = [
            asyncio.create_task(self.follower.run(), name="rtscore-registry-follow"),
            asyncio.create_task(self._heartbeats(), name="rtscore-heartbeat"),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_tasks()
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close(grace=None)

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)

    async def wait_first_state(self, seconds: float) -> bool:
        """Wait until the first desired state was applied (or `seconds` passed); whether it was."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.follower is not None and self.follower.states_handled == 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def leave(self) -> None:
        """Stop following and heartbeating, and leave the membership (best effort, one short call)."""
        await self._stop_tasks()
        request = pb.HeartbeatRequest(
            environment=self.environment, pool=self.pool, endpoint=self.endpoint, ttl_seconds=self.ttl_s,
            leave=True,
        )  # fmt: skip
        try:
            await self._stub.Heartbeat(request, metadata=self.connection.metadata, timeout=1.0)
            log.info("left the registry membership", extra={"endpoint": self.endpoint, "pool": self.pool})
        except grpc.aio.AioRpcError as err:
            log.warning("could not leave the membership; it expires", extra={"code": err.code().name})

    # --- desired state ------------------------------------------------------------------------------

    async def _apply(self, state: pb.DesiredState) -> None:
        desired = {f"{d.name}@{d.version}": d for d in state.deployments if d.role in ("champion", "shadow")}
        specs = [
            ModelSpec(d.name, "", str(d.version), sha256=d.sha256, roles=(d.role,)) for d in desired.values()
        ]
        report = await reconcile(self.core, specs, self._fetch)
        self.refused = {}
        for ref, err in report.errors.items():
            if is_transient(err):
                continue
            self.refused[ref] = (desired[ref], str(err))
            log.error("desired version refused", extra={"model": ref, "error": str(err)})
            for recorder in self._recorders:
                recorder.model_refused(desired[ref].name, str(desired[ref].version), type(err).__name__)
        log.info(
            "desired state applied",
            extra={"revision": state.revision, "loaded": report.loaded, "unloaded": report.unloaded,
                   "replaced": report.replaced, "refused": sorted(self.refused)},
        )  # fmt: skip
        self.changes.changed.set()
        transient = [ref for ref, err in report.errors.items() if is_transient(err)]
        if transient:
            raise Unavailable(f"could not fetch {', '.join(transient)} yet")

    async def _fetch(self, spec: ModelSpec) -> ModelSpec:
        key = (spec.ref, spec.sha256)
        if key in self._refused:
            raise self._refused[key]
        try:
            path = await self.cache.fetch(
                self._stub, self.connection.metadata, spec.name, int(spec.version), spec.sha256
            )
            canary = _canary(await self._version(spec))
        except RtscoreError as err:
            if not is_transient(err):
                self._refused[key] = err
            raise
        return ModelSpec(spec.name, str(path), spec.version, canary, spec.sha256, spec.roles)

    async def _version(self, spec: ModelSpec) -> pb.Version:
        key = (spec.ref, spec.sha256)
        if key not in self._versions:
            request = pb.VersionRef(name=spec.name, version=int(spec.version))
            try:
                got = await self._stub.GetVersion(request, metadata=self.connection.metadata, timeout=10.0)
            except grpc.aio.AioRpcError as err:
                raise Unavailable(f"GetVersion {spec.ref}: {err.code().name}: {err.details()}") from None
            self._versions[key] = got
        return self._versions[key]

    # --- membership ---------------------------------------------------------------------------------

    def heartbeat_request(self) -> pb.HeartbeatRequest:
        """What the scorer hosts and refused, as the next heartbeat says it."""
        table = self.core.table
        hosted = [
            pb.HostedVersion(
                name=h.name, version=_version_number(h.version), sha256=h.model.sha256,
                roles=table.roles_of(h), health="SERVING" if h.serving else "NOT_SERVING",
                reason=h.health_reason,
            )
            for h in table.models()
        ]  # fmt: skip
        refused = [
            pb.HostedVersion(name=d.name, version=d.version, sha256=d.sha256, roles=[d.role],
                             health="REFUSED", reason=reason)
            for d, reason in self.refused.values()
        ]  # fmt: skip
        serving = any(h.health == "SERVING" for h in hosted)
        return pb.HeartbeatRequest(
            environment=self.environment, pool=self.pool, endpoint=self.endpoint, ttl_seconds=self.ttl_s,
            hosted=hosted, refused=refused, health="SERVING" if serving else "NOT_SERVING",
        )  # fmt: skip

    async def _heartbeats(self) -> None:
        backoff = Backoff(initial=0.1, cap=min(self._backoff_max_s, self.ttl_s / 3))
        interval = self.ttl_s / 3
        failing = False
        while True:
            self.changes.changed.clear()
            try:
                await self._stub.Heartbeat(
                    self.heartbeat_request(), metadata=self.connection.metadata, timeout=interval
                )
                if failing:
                    log.info("heartbeats resumed", extra={"endpoint": self.endpoint})
                failing = False
                backoff.reset()
                wait = interval
            except grpc.aio.AioRpcError as err:
                wait = backoff.next_delay()
                # one warning per outage; the retries while it lasts are debug detail
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "heartbeat failed", extra={"code": err.code().name, "retry_s": round(wait, 3)})
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changes.changed.wait(), wait)
