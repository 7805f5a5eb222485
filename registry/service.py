"""The gRPC adapter of the registry: authenticate, translate messages, delegate to the core."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry import converters as cv
from registry.access import Caller, authenticate, authorize
from registry.catalog import Catalog, Registration
from registry.evaluations import EvaluationReport, Evaluations
from registry.history import read_history
from registry.lifecycle import Lifecycle
from registry.metrics import observe
from registry.watch import Heartbeat, Watches
from rtscore.errors import InvalidArgument, RtscoreError

log = logging.getLogger(__name__)


@dataclass
class RegistryCore:
    """The transport-neutral parts the servicer delegates to."""

    pool: asyncpg.Pool
    catalog: Catalog
    lifecycle: Lifecycle
    evaluations: Evaluations
    watches: Watches
    chunk_size: int


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None


def rpc(method: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate and authorize the call, pass the caller in, turn domain errors into statuses."""
    name = method.__name__

    async def caller_of(self: RegistryServicer, context: grpc.aio.ServicerContext) -> Caller:
        caller = await authenticate(self.core.pool, _authorization(context))
        authorize(caller, name)
        return caller

    async def fail(context: grpc.aio.ServicerContext, err: Exception, started: float) -> None:
        if isinstance(err, RtscoreError):
            observe(name, err.code.name, time.perf_counter() - started)
            await context.abort(err.code, str(err))
        observe(name, grpc.StatusCode.INTERNAL.name)
        log.exception("registry %s failed", name)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {name} (see the registry's log)")

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: RegistryServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                caller = await caller_of(self, context)
                async for item in method(self, request, context, caller):
                    yield item
                observe(name, "OK")
            except Exception as err:  # every error must end the stream with a status
                await fail(context, err, started)

        return stream

    @functools.wraps(method)
    async def unary(self: RegistryServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            caller = await caller_of(self, context)
            result = await method(self, request, context, caller)
        except Exception as err:  # every error must end the call with a status
            await fail(context, err, started)
        observe(name, "OK", time.perf_counter() - started)
        return result

    return unary


async def _data_chunks(requests: AsyncIterator[pb.RegisterChunk]) -> AsyncIterator[bytes]:
    async for message in requests:
        if message.WhichOneof("part") != "data":
            raise InvalidArgument("only the first message of an upload may be a header; the rest carry data")
        yield message.data


class RegistryServicer(pb_grpc.RegistryServicer):
    """rtscore.v1.Registry over the registry core."""

    def __init__(self, core: RegistryCore) -> None:
        self.core = core

    @rpc
    async def RegisterVersion(self, requests: Any, context: Any, caller: Caller) -> pb.Version:  # noqa: N802
        """Register a version from a streamed bundle."""
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("an upload starts with a header message (name, sha256, size)")
        h = first.header
        reg = Registration(
            name=h.name,
            sha256=h.sha256,
            size=h.size,
            canary_frame=cv.parse_json_field(h.canary_frame_json, "canary_frame_json"),
            canary_expected=cv.parse_json_field(h.canary_expected_json, "canary_expected_json"),
            metrics=dict(h.metrics),
            tags=dict(h.tags),
            reason=h.reason,
        )
        row, created = await self.core.catalog.register(caller, reg, _data_chunks(requests))
        return cv.version_pb(row, created)

    @rpc
    async def GetVersion(self, request: pb.VersionRef, context: Any, caller: Caller) -> pb.Version:  # noqa: N802
        """One version."""
        return cv.version_pb(await self.core.catalog.get(request.name, request.version))

    @rpc
    async def ListVersions(self, request: Any, context: Any, caller: Caller) -> pb.ListVersionsResponse:  # noqa: N802
        """Versions, filtered."""
        rows = await self.core.catalog.list(
            request.name, dict(request.tags), request.environment, request.limit
        )
        return pb.ListVersionsResponse(versions=[cv.version_pb(r) for r in rows])

    @rpc
    async def DownloadBundle(self, request: pb.VersionRef, context: Any, caller: Caller) -> Any:  # noqa: N802
        """A bundle in chunks; the last message carries the sha256 of what was sent."""
        row, chunks = await self.core.catalog.download(request.name, request.version, self.core.chunk_size)
        digest = hashlib.sha256()
        first = True
        async for chunk in chunks:
            digest.update(chunk)
            yield pb.BundleChunk(data=chunk, size=row["size"] if first else 0)
            first = False
        yield pb.BundleChunk(sha256=digest.hexdigest(), size=row["size"] if first else 0)

    @rpc
    async def Deploy(self, request: pb.DeployRequest, context: Any, caller: Caller) -> pb.Deployment:  # noqa: N802
        """Deploy a version."""
        r = request
        row = await self.core.lifecycle.deploy(
            caller,
            r.name,
            r.version,
            r.environment,
            role=r.role,
            reason=r.reason,
            pool=r.pool,
            traffic_share=r.traffic_share,
        )
        return cv.deployment_pb(row)

    @rpc
    async def Promote(self, request: pb.ChangeRequest, context: Any, caller: Caller) -> pb.Deployment:  # noqa: N802
        """Promote shadow to champion."""
        r = request
        return cv.deployment_pb(
            await self.core.lifecycle.promote(caller, r.name, r.version, r.environment, r.reason)
        )

    @rpc
    async def Retire(self, request: pb.ChangeRequest, context: Any, caller: Caller) -> pb.Deployment:  # noqa: N802
        """Retire a version in an environment."""
        r = request
        return cv.deployment_pb(
            await self.core.lifecycle.retire(caller, r.name, r.version, r.environment, r.reason)
        )

    @rpc
    async def Rollback(self, request: pb.RollbackRequest, context: Any, caller: Caller) -> pb.Deployment:  # noqa: N802
        """Re-promote the previous champion."""
        r = request
        return cv.deployment_pb(await self.core.lifecycle.rollback(caller, r.name, r.environment, r.reason))

    @rpc
    async def RecordEvaluation(self, request: Any, context: Any, caller: Caller) -> pb.Evaluation:  # noqa: N802
        """Store a shadow evaluation."""
        r = request
        report = EvaluationReport(
            name=r.name,
            candidate_version=r.candidate_version,
            environment=r.environment,
            sample_size=r.sample_size,
            agreement=r.agreement,
            score_distance=r.score_distance,
            champion_version=r.champion_version,
            candidate_latency_p99_ms=r.candidate_latency_p99_ms,
            champion_latency_p99_ms=r.champion_latency_p99_ms,
            notes=r.notes,
        )
        return cv.evaluation_pb(await self.core.evaluations.record(caller, report))

    @rpc
    async def ListEvaluations(self, request: Any, context: Any, caller: Caller) -> Any:  # noqa: N802
        """Evaluations of a model."""
        rows = await self.core.evaluations.list(request.name, request.candidate_version, request.environment)
        return pb.ListEvaluationsResponse(evaluations=[cv.evaluation_pb(r) for r in rows])

    @rpc
    async def History(self, request: pb.HistoryRequest, context: Any, caller: Caller) -> pb.HistoryResponse:  # noqa: N802
        """The audit log, filtered."""
        r = request
        rows = await read_history(
            self.core.pool,
            name=r.name,
            version=r.version,
            environment=r.environment,
            actor=r.actor,
            since=r.since,
            until=r.until,
            limit=r.limit,
        )
        return pb.HistoryResponse(events=[cv.event_pb(e) for e in rows])

    @rpc
    async def WatchDeployments(self, request: Any, context: Any, caller: Caller) -> Any:  # noqa: N802
        """Desired state, pushed on change."""
        r = request
        async for state in self.core.watches.watch_desired(r.environment, r.pool, r.since_revision):
            yield cv.desired_state_pb(state)

    @rpc
    async def Heartbeat(self, request: Any, context: Any, caller: Caller) -> pb.HeartbeatResponse:  # noqa: N802
        """A scorer's heartbeat: membership, what it hosts, what it refused; or its leaving."""
        r = request
        beat = Heartbeat(
            environment=r.environment,
            pool=r.pool,
            endpoint=r.endpoint,
            ttl_seconds=r.ttl_seconds,
            health=r.health,
            hosted=cv.hosted_versions(r.hosted),
            refused=cv.hosted_versions(r.refused),
            leave=r.leave,
        )
        expires = await self.core.watches.heartbeat(caller.name, beat)
        return pb.HeartbeatResponse(expires_at=expires.isoformat())

    @rpc
    async def WatchMembers(self, request: Any, context: Any, caller: Caller) -> Any:  # noqa: N802
        """Live members of a pool, pushed on change."""
        pool = request.pool or "default"
        async for members in self.core.watches.watch_members(request.environment, pool):
            yield cv.membership_pb(request.environment, pool, members)
