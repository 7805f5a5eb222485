"""The registry service's composition root: pool, change feed, store, gRPC server, drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from protos.rtscore.v1 import registry_pb2, registry_pb2_grpc
from registry.catalog import BundleInspector, Catalog, inspect_with_scorer
from registry.db import open_pool
from registry.evaluations import Evaluations
from registry.lifecycle import Lifecycle
from registry.service import RegistryCore, RegistryServicer
from registry.settings import RegistrySettings
from registry.store import ArtifactStore, LocalStore, PostgresStore
from registry.watch import ChangeFeed, Watches
from rtscore.errors import InvalidArgument
from rtscore.signals import ignore_stop_signals, stop_on_signals
from rtscore.tls import server_credentials

log = logging.getLogger(__name__)

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name


@dataclass
class RunningRegistry:
    """A started registry: where it listens and how to stop it."""

    port: int
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    settings: RegistrySettings

    @property
    def address(self) -> str:
        """host:port clients connect to."""
        return f"127.0.0.1:{self.port}"


def _store(settings: RegistrySettings, pool: asyncpg.Pool) -> ArtifactStore:
    if settings.store == "postgres":
        spool = Path(tempfile.gettempdir()) / "rtscore-registry-spool"
        return PostgresStore(pool, spool, settings.chunk_size)
    return LocalStore(settings.store_dir)


def _bind(server: grpc.aio.Server, settings: RegistrySettings) -> int:
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    if credentials is None:
        return int(server.add_insecure_port(address))
    return int(server.add_secure_port(address, credentials))


@asynccontextmanager
async def running_registry(
    settings: RegistrySettings, *, inspector: BundleInspector = inspect_with_scorer
) -> AsyncIterator[RunningRegistry]:
    """Open everything in order, serve, and on exit drain and close in reverse."""
    if not settings.database_url:
        raise InvalidArgument("no database: set RTSCORE_DATABASE_URL (or run `rtscore services up`)")
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(open_pool(settings.database_url, max_size=settings.pool_size))
        feed = ChangeFeed(settings.database_url)
        await feed.start()
        stack.push_async_callback(feed.close)
        store = _store(settings, pool)
        core = RegistryCore(
            pool=pool,
            catalog=Catalog(pool, store, max_bundle_bytes=settings.max_bundle_bytes, inspector=inspector),
            lifecycle=Lifecycle(pool),
            evaluations=Evaluations(pool, settings.eval),
            watches=Watches(pool, feed, settings.watch_poll_seconds),
            chunk_size=settings.chunk_size,
        )
        # uploads may come in chunks of up to 8 MiB whatever the download chunk size
        message_limit = max(settings.chunk_size * 2, 8 << 20) + (1 << 16)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", message_limit),
                ("grpc.max_send_message_length", message_limit),
                # followers keep idle watch streams open and ping them (registry.follow.CHANNEL_OPTIONS)
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ]
        )
        registry_pb2_grpc.add_RegistryServicer_to_server(RegistryServicer(core), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        port = _bind(server, settings)
        await server.start()
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

        async def drain() -> None:
            await health_servicer.enter_graceful_shutdown()
            await server.stop(settings.grace_seconds)

        stack.push_async_callback(drain)
        if settings.metrics_port is not None:
            metrics_server, _ = start_http_server(settings.metrics_port, addr=settings.host)
            stack.callback(metrics_server.server_close)  # runs after shutdown: exit callbacks run in reverse
            stack.callback(metrics_server.shutdown)
        log.info("registry serving on %s:%d (store: %s)", settings.host, port, store.name)
        yield RunningRegistry(port, server, health_servicer, settings)


async def serve(settings: RegistrySettings) -> None:
    """Serve until SIGTERM or SIGINT, then drain."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_on_signals(loop, stop)
    async with running_registry(settings) as running:
        print(f"registry listening on {settings.host}:{running.port}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await stop.wait()
    ignore_stop_signals()  # drained on leaving `running_registry`
