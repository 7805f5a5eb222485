"""Watch streams over LISTEN/NOTIFY: desired deployments, restarts, scorer membership; migrations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import grpc
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.db import migrate, migrations
from registry.server import running_registry
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    Team,
    bundle_variant,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    registry_settings,
    team_fixture,
    with_database,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


def deploy_request(name: str, version: int, pool: str, reason: str = "ship it") -> pb.DeployRequest:
    return pb.DeployRequest(
        name=name, version=version, environment="integration", pool=pool, role="shadow", reason=reason
    )


async def next_message(call: grpc.aio.UnaryStreamCall, seconds: float = 5.0) -> pb.DesiredState:
    return await asyncio.wait_for(call.read(), seconds)


async def test_watchers_are_pushed_every_change_of_their_pool(team: Team, tmp_path: Path) -> None:
    for i in (1, 2):
        await team.author.register("pushed", bundle_variant(tmp_path, f"pushed-{i}"))
    watch = team.service.stub.WatchDeployments(
        pb.WatchDeploymentsRequest(environment="integration", pool="blue"), metadata=team.service.metadata
    )
    initial = await next_message(watch)
    assert list(initial.deployments) == []
    latencies = []
    for version in (1, 2):
        started = time.perf_counter()
        await team.author.call("Deploy", deploy_request("pushed", version, "blue"))
        state = await next_message(watch)
        latencies.append((time.perf_counter() - started) * 1000)
        assert [(d.name, d.version, d.role) for d in state.deployments][-1] == ("pushed", version, "shadow")
        assert state.revision > initial.revision
    retire = pb.ChangeRequest(name="pushed", version=1, environment="integration", reason="superseded")
    await team.approver.call("Retire", retire)
    state = await next_message(watch)
    assert [d.version for d in state.deployments] == [2]
    watch.cancel()
    print(f"watch latency, deploy call start -> watcher notified: {[f'{ms:.1f} ms' for ms in latencies]}")


async def test_a_watch_resumes_after_a_registry_restart_without_missing_a_change(
    database_url: str, team: Team, tmp_path: Path
) -> None:
    await team.author.register("resumed", bundle_variant(tmp_path, "resumed"))
    settings = registry_settings(database_url, tmp_path / "store")
    async with running_registry(settings) as first:
        port = first.port
        channel = grpc.aio.insecure_channel(first.address)
        stub = pb_grpc.RegistryStub(channel)
        request = pb.WatchDeploymentsRequest(environment="integration", pool="restart")
        watch = stub.WatchDeployments(request, metadata=team.service.metadata)
        seen = await next_message(watch)
    with pytest.raises(grpc.aio.AioRpcError):
        await next_message(watch)  # the registry went away under the stream
    # the change happens while no registry this watcher knows of is up
    await team.author.call("Deploy", deploy_request("resumed", 1, "restart"))
    async with running_registry(registry_settings(database_url, tmp_path / "store", port=port)):
        request = pb.WatchDeploymentsRequest(
            environment="integration", pool="restart", since_revision=seen.revision
        )
        watch = stub.WatchDeployments(request, metadata=team.service.metadata)
        caught_up = await next_message(watch)
        assert caught_up.revision > seen.revision
        assert [(d.name, d.version) for d in caught_up.deployments] == [("resumed", 1)]
        retire = pb.ChangeRequest(name="resumed", version=1, environment="integration", reason="done")
        await team.approver.call("Retire", retire)
        after = await next_message(watch)
        assert list(after.deployments) == []
        watch.cancel()
    await channel.close()


async def test_membership_follows_heartbeats_and_expiry(team: Team) -> None:
    members = team.author.stub.WatchMembers(
        pb.WatchMembersRequest(environment="production", pool="scorers"), metadata=team.author.metadata
    )
    assert list((await next_message(members)).endpoints) == []

    async def beat(endpoint: str, ttl: float) -> None:
        request = pb.HeartbeatRequest(
            environment="production", pool="scorers", endpoint=endpoint, ttl_seconds=ttl
        )
        await team.service.call("Heartbeat", request)

    await beat("10.0.0.1:7000", 1.0)
    assert list((await next_message(members)).endpoints) == ["10.0.0.1:7000"]
    await beat("10.0.0.2:7000", 60.0)
    assert list((await next_message(members)).endpoints) == ["10.0.0.1:7000", "10.0.0.2:7000"]
    expired = await next_message(members, seconds=3.0)
    assert list(expired.endpoints) == ["10.0.0.2:7000"]
    members.cancel()


async def test_heartbeats_are_checked(team: Team) -> None:
    request = pb.HeartbeatRequest(environment="production", pool="scorers", endpoint="nohost", ttl_seconds=5)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await team.service.call("Heartbeat", request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "endpoint must be host:port" in (refused.value.details() or "")


async def test_two_registries_migrating_one_database_at_once_apply_each_migration_once(
    database_url: str,
) -> None:
    admin = await asyncpg.connect(database_url)
    name = "rtscore_registry_migrate_race"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(database_url, name)
        conns = [await asyncpg.connect(url) for _ in range(2)]
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        for c in conns:
            await c.close()
        assert sorted(applied, key=len) == [[], [m for m, _ in migrations()]]
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_watchers_keep_getting_changes_after_the_listen_connection_drops(
    team: Team, db: asyncpg.Pool, tmp_path: Path
) -> None:
    await team.author.register("relisten", bundle_variant(tmp_path, "relisten"))
    watch = team.service.stub.WatchDeployments(
        pb.WatchDeploymentsRequest(environment="integration", pool="relisten"), metadata=team.service.metadata
    )
    await next_message(watch)
    dropped = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
    )
    assert dropped >= 1
    await asyncio.sleep(0.3)  # the registry notices and reconnects
    await team.author.call("Deploy", deploy_request("relisten", 1, "relisten"))
    # well within the 5 s safety poll: the change came through the new LISTEN connection
    state = await next_message(watch, seconds=2.0)
    assert [(d.name, d.version) for d in state.deployments] == [("relisten", 1)]
    watch.cancel()
