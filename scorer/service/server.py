"""The scorer's composition root: thread pool, core, health, metrics and the gRPC server, in order."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import signal
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
from scorer.service.core import ScorerCore
from scorer.service.health import HealthBoard
from scorer.service.metrics import ScorerMetrics
from scorer.service.mleap_api import MleapServicer
from scorer.service.model import HostedModel, ModelLoader, ModelSpec, ScoringModel
from scorer.service.scorer_api import ScorerServicer
from scorer.service.settings import ScorerSettings

log = logging.getLogger(__name__)


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
        budget = s.canary_budget_ms / 1e3
        self.core = ScorerCore(
            self._loader, pool, max_in_flight=s.max_in_flight, canary_budget_s=budget,
            events=[self.health, self.metrics], inline_rows=s.inline_rows,
            inline_budget_s=s.inline_budget_ms / 1e3,
        )  # fmt: skip
        await self.health.models_changed(self.core.table)
        self._server = self._grpc_server()
        self.port = self._server.add_insecure_port(f"{s.host}:{s.port}")
        await self._server.start()
        stack.push_async_callback(self._stop_server, 0.0)
        canaries = asyncio.create_task(self._canary_loop(), name="rtscore-canaries")
        stack.push_async_callback(_cancel, canaries)
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
        ]
        server = grpc.aio.server(options=options)
        scorer_pb2_grpc.add_ScorerServicer_to_server(ScorerServicer(self.core, self.metrics), server)
        grpc_pb2_grpc.add_MleapServicer_to_server(MleapServicer(self.core, self.metrics), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        names = (
            scorer_pb2.DESCRIPTOR.services_by_name["Scorer"].full_name,
            grpc_pb2.DESCRIPTOR.services_by_name["Mleap"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        return server

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


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def serve(settings: ScorerSettings, models: list[ModelSpec]) -> int:
    """Run one scorer until SIGTERM or SIGINT, then drain; returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with ScorerServer(settings) as server:
        for spec in models:
            await server.load(spec)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        metrics = f" metrics on {settings.metrics_host}:{server.metrics_port}" if server.metrics_port else ""
        # The one line a supervisor or test reads to learn the port (0 picks a free one).
        print(f"rtscore scorer: serving on {settings.host}:{server.port}{metrics}", flush=True)
        await stop.wait()
        await server.drain()
    print("rtscore scorer: drained", file=sys.stderr, flush=True)
    return 0
