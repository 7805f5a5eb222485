"""The scorer's composition root: thread pool, core, health, metrics and the gRPC server, in order."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, suppress
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from protos.ml.combust.mleap.pb import grpc_pb2, grpc_pb2_grpc
from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc
from registry.follow import BundleCache, RegistryConnection
from rtscore.cpu_latency import CpuLatencyRequest
from rtscore.errors import InvalidArgument
from rtscore.heap import freeze_long_lived
from rtscore.signals import ignore_stop_signals, stop_on_signals
from rtscore.tasks import cancel_and_wait
from rtscore.tls import server_credentials
from scorer.service.admin import AdminGuard, read_token
from scorer.service.admission import pending_call_options
from scorer.service.core import ScorerCore
from scorer.service.following import (
    RefusalCounter,
    RegistryFollowing,
    TableChanges,
    default_bundle_cache_dir,
)
from scorer.service.health import HealthBoard
from scorer.service.metrics import ScorerMetrics
from scorer.service.mleap_api import MleapServicer
from scorer.service.model import HostedModel, ModelLoader, ModelSpec, ScoringModel
from scorer.service.scorer_api import ScorerServicer
from scorer.service.settings import ScorerSettings

log = logging.getLogger(__name__)

# How long `serve` waits for the registry's first desired state before it reports the port anyway.
FIRST_STATE_S = 30.0


def name_os_thread(name: str) -> None:
    """Give the calling thread an OS-visible name (top -H, ps, profilers), where the system allows."""
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def default_loader(path: str) -> ScoringModel:
    """Load a bundle with rtscore's runtime and the default compiled-forest cache."""
    from scorer.bundle import load_bundle

    bundle: ScoringModel = load_bundle(path)
    return bundle


class ScorerServer:
    """One scorer process's server; `async with` starts it, leaving the block stops it."""

    def __init__(self, settings: ScorerSettings, loader: ModelLoader | None = None) -> None:
        self.settings = settings
        self._loader: ModelLoader = loader or default_loader
        self.port = 0
        self.metrics_port: int | None = None
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._draining = False
        self.following: RegistryFollowing | None = None

    async def __aenter__(self) -> ScorerServer:
        s = self.settings
        stack = self._stack
        pool = ThreadPoolExecutor(
            s.scoring_threads,
            thread_name_prefix="rtscore-score",
            initializer=name_os_thread,
            initargs=("rtscore-score",),
        )
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        self.metrics = ScorerMetrics()
        stack.callback(self.metrics.close)
        if s.metrics_port is not None:
            self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
        self.health = HealthBoard(HealthServicer())
        self._changes = TableChanges()
        self.admin = AdminGuard(
            token=read_token(s.operator_token_file), locked=s.registry is not None, load_dirs=s.load_dirs
        )
        budget = s.canary_budget_ms / 1e3
        self.core = ScorerCore(
            self._loader, pool, max_in_flight=s.max_in_flight, canary_budget_s=budget,
            events=[self.health, self.metrics, self._changes], inline_rows=s.inline_rows,
            inline_budget_s=s.inline_budget_ms / 1e3, scoring_threads=s.scoring_threads,
            deadline_margin_s=s.deadline_margin_ms / 1e3 if s.shed_by_deadline else None,
        )  # fmt: skip
        await self.health.models_changed(self.core.table)
        self._server = self._grpc_server()
        credentials = server_credentials(s.tls_cert, s.tls_key, s.tls_client_ca)
        address = f"{s.host}:{s.port}"
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        await self._server.start()
        stack.push_async_callback(self._stop_server, 0.0)
        if s.registry is not None:
            self.following = await stack.enter_async_context(self._following())
        canaries = asyncio.create_task(self._canary_loop(), name="rtscore-canaries")
        stack.push_async_callback(cancel_and_wait, canaries)
        loop = type(asyncio.get_running_loop())
        log.info(
            "scorer listening",
            extra={"host": s.host, "port": self.port, "event_loop": f"{loop.__module__}.{loop.__qualname__}"},
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def _grpc_server(self) -> grpc.aio.Server:
        s = self.settings
        options = [
            ("grpc.so_reuseport", 1),  # lets --workers processes share one port
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            # overload is refused by gRPC's core, before the event loop pays for a call
            *pending_call_options(s.max_pending_calls, s.pending_calls_soft_limit),
        ]
        server = grpc.aio.server(options=options)
        scorer_pb2_grpc.add_ScorerServicer_to_server(
            ScorerServicer(self.core, self.metrics, self.admin), server
        )
        grpc_pb2_grpc.add_MleapServicer_to_server(MleapServicer(self.core, self.metrics, self.admin), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        names = (
            scorer_pb2.DESCRIPTOR.services_by_name["Scorer"].full_name,
            grpc_pb2.DESCRIPTOR.services_by_name["Mleap"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        return server

    def _following(self) -> RegistryFollowing:
        s = self.settings
        assert s.registry is not None
        token = read_token(s.registry_token_file) or ""
        connection = RegistryConnection(
            s.registry, token, ca=s.registry_ca, cert=s.registry_cert, key=s.registry_key
        )
        return RegistryFollowing(
            self.core, connection, environment=s.environment, pool=s.pool, endpoint=self.endpoint,
            cache=BundleCache(s.bundle_cache_dir or default_bundle_cache_dir()), changes=self._changes,
            ttl_s=s.heartbeat_ttl_s, backoff_max_s=s.registry_backoff_max_s,
            refusals=[RefusalCounter(self.metrics.registry)],
        )  # fmt: skip

    @property
    def endpoint(self) -> str:
        """host:port this scorer announces to the registry."""
        if self.settings.advertise:
            return self.settings.advertise
        host = self.settings.host
        return f"{socket.getfqdn() if host in ('0.0.0.0', '::', '') else host}:{self.port}"

    async def load(self, spec: ModelSpec) -> HostedModel:
        """Load one model (or swap in a new version of it)."""
        return await self.core.load(spec.name, spec.version, spec.path, spec.canary)

    async def _canary_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.canary_interval_s)
            try:
                await self.core.check_canaries()
            except Exception:  # the loop must outlive one bad round; the cause is logged
                log.exception("canary round failed")

    async def drain(self) -> None:
        """Graceful drain: health NOT_SERVING, refuse new calls, let in-flight ones finish in the grace."""
        if self._draining:
            return
        self._draining = True
        grace = self.settings.drain_grace_s
        log.info("draining", extra={"grace_s": grace})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self.following is not None:
            # Clients learn from the membership first, while the port still answers.
            await self.following.leave()
            await asyncio.sleep(min(self.settings.leave_grace_s, max(0.0, deadline - loop.time())))
        await self.health.shut_down()
        # The server keeps accepting while scoring calls finish, so a late call gets a clear
        # UNAVAILABLE from the gate (which clients retry elsewhere) instead of a transport cancel.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.core.drain(), grace)
        await self._stop_server(max(0.0, deadline - loop.time()))

    async def _stop_server(self, grace: float) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop(grace)


async def serve(settings: ScorerSettings, models: list[ModelSpec]) -> int:
    """Run one scorer until SIGTERM or SIGINT, then drain; returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if settings.registry is not None and models:
        raise InvalidArgument("a scorer following a registry takes its models from it: drop --model")
    async with AsyncExitStack() as held:
        if settings.cpu_latency_us is not None:
            held.enter_context(CpuLatencyRequest(settings.cpu_latency_us))
        server = await held.enter_async_context(ScorerServer(settings))
        for spec in models:
            await server.load(spec)
        if server.following is not None and not await server.following.wait_first_state(FIRST_STATE_S):
            log.warning("no desired state from the registry yet; serving nothing until it answers")
        stop_on_signals(loop, stop)
        metrics = f" metrics on {settings.metrics_host}:{server.metrics_port}" if server.metrics_port else ""
        freeze_long_lived()  # before the first call: no full collection walks the models and modules
        # The one line a supervisor or test reads to learn the port (0 picks a free one).
        print(f"rtscore scorer: serving on {settings.host}:{server.port}{metrics}", flush=True)
        await stop.wait()
        await server.drain()
        ignore_stop_signals()
    print("rtscore scorer: drained", file=sys.stderr, flush=True)
    return 0
