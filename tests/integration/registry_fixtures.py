"""Fixtures of the registry's integration tests: a fresh database per module, a real registry server."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
import pytest_asyncio

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.db import open_pool
from registry.server import RunningRegistry, running_registry
from registry.settings import EvaluationThresholds, RegistrySettings
from tests.paths import FIXTURES

THRESHOLDS = EvaluationThresholds(min_sample_size=100, min_agreement=0.95, max_score_distance=0.2)


def with_database(url: str, name: str) -> str:
    """url pointing at database name instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest_asyncio.fixture(name="database_url", scope="module", loop_scope="module")
async def database_url_fixture(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database on the services' Postgres (tests/conftest.py), dropped after the module."""
    base = postgres_url
    name = f"rtscore_registry_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield with_database(base, name)
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def registry_settings(database_url: str, store_dir: Path, **overrides: Any) -> RegistrySettings:
    """Settings of a test registry: port 0, short grace, test thresholds."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "port": 0,
        "store_dir": store_dir,
        "grace_seconds": 0.2,
        "eval": THRESHOLDS,
        "watch_poll_seconds": 5.0,
    }
    values.update(overrides)
    return RegistrySettings(**values)


@pytest_asyncio.fixture(name="registry", scope="module", loop_scope="module")
async def registry_fixture(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningRegistry]:
    """A registry server on a free port over the module's database."""
    settings = registry_settings(database_url, tmp_path_factory.mktemp("store"))
    async with running_registry(settings) as running:
        yield running


@pytest_asyncio.fixture(name="db", scope="module", loop_scope="module")
async def db_fixture(database_url: str, registry: RunningRegistry) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the module's database, for setup and for checking what the registry stored."""
    async with open_pool(database_url, max_size=4) as pool:
        yield pool


@dataclass
class Caller:
    """A token holder talking to the registry."""

    name: str
    token: str
    stub: pb_grpc.RegistryStub

    @property
    def metadata(self) -> list[tuple[str, str]]:
        """The bearer token as call metadata."""
        return [("authorization", f"Bearer {self.token}")]

    async def call(self, method: str, request: Any) -> Any:
        """A unary call with this caller's token."""
        return await getattr(self.stub, method)(request, metadata=self.metadata, timeout=30)

    async def register(self, name: str, bundle: Path, **header: Any) -> pb.Version:
        """Upload bundle as a version of name."""
        data = await asyncio.to_thread(bundle.read_bytes)
        sha = hashlib.sha256(data).hexdigest()
        head = pb.RegisterHeader(name=name, sha256=sha, size=len(data), **header)
        messages = [pb.RegisterChunk(header=head)]
        messages += [pb.RegisterChunk(data=data[i : i + 65536]) for i in range(0, len(data), 65536)]
        return await self.stub.RegisterVersion(iter(messages), metadata=self.metadata, timeout=60)


@dataclass
class Team:
    """One caller per role, plus a second approver."""

    admin: Caller
    author: Caller
    approver: Caller
    approver2: Caller
    service: Caller
    channel: grpc.aio.Channel


@pytest_asyncio.fixture(name="team", scope="module", loop_scope="module")
async def team_fixture(registry: RunningRegistry, db: asyncpg.Pool) -> AsyncIterator[Team]:
    """Tokens for every role and a channel to the registry."""
    channel = grpc.aio.insecure_channel(registry.address)
    stub = pb_grpc.RegistryStub(channel)
    people = {}
    for person, role in (
        ("admin", "admin"),
        ("alice", "author"),
        ("bob", "approver"),
        ("carol", "approver"),
        ("shadow-worker", "service"),
    ):
        people[person] = Caller(person, await create_token(db, person, role), stub)
    yield Team(
        people["admin"], people["alice"], people["bob"], people["carol"], people["shadow-worker"], channel
    )
    await channel.close()


def bundle_variant(folder: Path, tag: str, source: str | Path = "demo.zip") -> Path:
    """A copy of a bundle (a fixture's name, or a path) with one extra stored entry, so its bytes (and
    sha256) are its own."""
    target = folder / f"{Path(source).stem}-{tag}.zip"
    shutil.copyfile(FIXTURES / source, target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(f"rtscore-build-{tag}.txt", tag)
    return target


async def status_of(call: Any) -> tuple[grpc.StatusCode, str]:
    """The status a refused call ended with; fails the test if the call succeeded."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    raise AssertionError("the call succeeded but should have been refused")
