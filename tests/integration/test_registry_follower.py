"""The reusable follower against a real registry whose Postgres restarts under it: the bundle cache
downloads through DownloadBundle, the watch survives the outage, resumes from its revision without
replaying an unchanged state, and receives the change made after the restart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.db import open_pool
from registry.follow import Backoff, BundleCache, DeploymentFollower, RegistryConnection
from registry.server import running_registry
from rtscore.localservices.postgres import PostgresCluster, PostgresRun
from rtscore.localservices.processes import free_port, service_account
from rtscore.localservices.settings import LocalServicesSettings
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    Caller,
    bundle_variant,
    database_url_fixture,
    registry_settings,
)
from tests.integration.tls_certs import Certs, certs_fixture  # noqa: F401 - fixture used by name

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]
T = TypeVar("T")


@pytest.fixture
def private_postgres(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PostgresCluster, PostgresRun]]:
    """A Postgres cluster of this test's own on a free port (the shared one is never restarted)."""
    cluster = PostgresCluster(
        tmp_path_factory.mktemp("private-pg"), LocalServicesSettings(), service_account(None)
    )
    running = cluster.start(free_port())
    try:
        yield cluster, running
    finally:
        cluster.stop()


async def retried(call: Callable[[], Awaitable[T]], seconds: float = 15.0) -> T:
    """Await call() until it stops failing with UNAVAILABLE (the registry reconnecting to Postgres)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_the_follower_rides_out_a_postgres_restart_and_receives_the_next_change(
    private_postgres: tuple[PostgresCluster, PostgresRun], tmp_path: Path
) -> None:
    cluster, running = private_postgres
    async with open_pool(running.url, max_size=1) as db:
        tokens = {
            who: await create_token(db, who, role) for who, role in (("ds", "author"), ("w", "service"))
        }
    settings = registry_settings(running.url, tmp_path / "store", watch_poll_seconds=1.0)
    async with running_registry(settings) as registry, grpc.aio.insecure_channel(registry.address) as channel:
        author = Caller("ds", tokens["ds"], pb_grpc.RegistryStub(channel))
        bundles = {v: bundle_variant(tmp_path, f"pg-{v}") for v in (1, 2)}
        for v in (1, 2):
            await author.register("fraud", bundles[v])
        deploy = pb.DeployRequest(name="fraud", version=1, environment="integration", pool="p", role="shadow",
                                  reason="first")  # fmt: skip
        await author.call("Deploy", deploy)

        states: list[pb.DesiredState] = []
        arrived = asyncio.Event()

        async def on_state(state: pb.DesiredState) -> None:
            states.append(state)
            arrived.set()

        connection = RegistryConnection(registry.address, tokens["w"])
        follower = DeploymentFollower(connection, "integration", "p", on_state, backoff=Backoff(0.05, 0.5))
        task = asyncio.create_task(follower.run())
        try:
            await asyncio.wait_for(arrived.wait(), 10)
            assert [d.version for d in states[-1].deployments] == [1]
            cache = BundleCache(tmp_path / "cache")
            sha = states[-1].deployments[0].sha256
            path = await cache.fetch(author.stub, connection.metadata, "fraud", 1, sha)
            assert (
                hashlib.sha256(path.read_bytes()).hexdigest()
                == sha
                == hashlib.sha256(bundles[1].read_bytes()).hexdigest()
            )

            # Restarted at once: while the port is free another test's private cluster could take it.
            await asyncio.to_thread(cluster.stop)
            await asyncio.to_thread(cluster.start, running.port)
            await asyncio.sleep(2.0)  # a watch that failed meanwhile has been retried by now
            assert len(states) == 1, "an unchanged state must not be handed over again after the outage"
            arrived.clear()
            redeploy = deploy.__class__(name="fraud", version=2, environment="integration", pool="p",
                                        role="shadow", reason="after the restart")  # fmt: skip
            await retried(lambda: author.call("Deploy", redeploy))
            await asyncio.wait_for(arrived.wait(), 10)
            assert [d.version for d in states[-1].deployments] == [1, 2]
            assert follower.revision == states[-1].revision
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_follower_reaches_a_mutual_tls_registry_only_with_its_certificate(
    database_url: str, certs: Certs, tmp_path: Path
) -> None:
    async with open_pool(database_url, max_size=1) as db:
        token = await create_token(db, "tls-watcher", "service")
    settings = registry_settings(
        database_url, tmp_path / "store",
        tls_cert=certs.server_cert, tls_key=certs.server_key, tls_client_ca=certs.ca,
    )  # fmt: skip
    async with running_registry(settings) as registry:
        states: list[pb.DesiredState] = []
        arrived = asyncio.Event()

        async def on_state(state: pb.DesiredState) -> None:
            states.append(state)
            arrived.set()

        good = RegistryConnection(
            registry.address, token, ca=certs.ca, cert=certs.client_cert, key=certs.client_key
        )
        follower = DeploymentFollower(good, "integration", "tls", on_state)
        task = asyncio.create_task(follower.run())
        try:
            await asyncio.wait_for(arrived.wait(), 10)
            assert (states[0].environment, states[0].pool) == ("integration", "tls")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        anonymous = RegistryConnection(registry.address, token, ca=certs.ca)
        async with anonymous.channel() as channel:
            request = pb.WatchDeploymentsRequest(environment="integration", pool="tls")
            call = pb_grpc.RegistryStub(channel).WatchDeployments(
                request, metadata=anonymous.metadata, timeout=5
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call.read()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
