"""Bundle uploads and downloads: validation, checksums, interrupted uploads, both artifact stores."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.errors import AlreadyExistsError
from registry.server import RunningRegistry, running_registry
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    FIXTURES,
    Caller,
    Team,
    bundle_variant,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    registry_settings,
    status_of,
    team_fixture,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


async def stored_state(db: asyncpg.Pool, name: str) -> tuple[int, int]:
    versions = await db.fetchval(
        "SELECT count(*) FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = $1", name
    )
    bundles = await db.fetchval("SELECT count(*) FROM bundles")
    return versions, bundles


def store_files(registry: RunningRegistry) -> list[Path]:
    return [p for p in registry.settings.store_dir.rglob("*") if p.is_file()]


async def test_a_file_that_is_not_a_bundle_is_refused_with_the_readers_error(
    team: Team, db: asyncpg.Pool, registry: RunningRegistry, tmp_path: Path
) -> None:
    before = await stored_state(db, "junk"), store_files(registry)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    code, message = await status_of(team.author.register("junk", junk))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("not a valid Bundle.ML bundle: the uploaded bundle: not a zip file")
    assert (await stored_state(db, "junk"), store_files(registry)) == before


async def test_a_zip_without_bundle_json_is_refused(team: Team, tmp_path: Path) -> None:
    import zipfile

    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("README.txt", "no bundle here")
    code, message = await status_of(team.author.register("empty", empty))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "bundle.json" in message


async def test_a_wrong_sha256_is_refused_and_nothing_is_stored(
    team: Team, db: asyncpg.Pool, registry: RunningRegistry, tmp_path: Path
) -> None:
    bundle = bundle_variant(tmp_path, "wrong-sha")
    before = await stored_state(db, "wrong"), store_files(registry)
    data = bundle.read_bytes()
    head = pb.RegisterHeader(name="wrong", sha256="0" * 64, size=len(data))
    messages = iter([pb.RegisterChunk(header=head), pb.RegisterChunk(data=data)])
    code, message = await status_of(
        team.author.stub.RegisterVersion(messages, metadata=team.author.metadata, timeout=30)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"the bytes received hash to {hashlib.sha256(data).hexdigest()}" in message
    assert (await stored_state(db, "wrong"), store_files(registry)) == before


async def test_an_upload_without_its_sha256_is_refused(team: Team, tmp_path: Path) -> None:
    data = bundle_variant(tmp_path, "unsigned").read_bytes()
    messages = iter(
        [pb.RegisterChunk(header=pb.RegisterHeader(name="unsigned")), pb.RegisterChunk(data=data)]
    )
    code, message = await status_of(
        team.author.stub.RegisterVersion(messages, metadata=team.author.metadata, timeout=30)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "must carry the bundle's sha256" in message


async def test_a_truncated_upload_is_refused(team: Team, db: asyncpg.Pool, tmp_path: Path) -> None:
    data = bundle_variant(tmp_path, "truncated").read_bytes()
    head = pb.RegisterHeader(name="truncated", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    messages = iter([pb.RegisterChunk(header=head), pb.RegisterChunk(data=data[: len(data) // 2])])
    code, message = await status_of(
        team.author.stub.RegisterVersion(messages, metadata=team.author.metadata, timeout=30)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert f"received {len(data) // 2} bytes, the header announced {len(data)}" in message
    assert (await stored_state(db, "truncated"))[0] == 0


async def test_an_upload_interrupted_halfway_leaves_nothing(
    team: Team, db: asyncpg.Pool, registry: RunningRegistry, tmp_path: Path
) -> None:
    data = bundle_variant(tmp_path, "interrupted").read_bytes()
    before = await stored_state(db, "interrupted")
    sent_half = asyncio.Event()

    async def messages() -> AsyncIterator[pb.RegisterChunk]:
        head = pb.RegisterHeader(name="interrupted", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        yield pb.RegisterChunk(header=head)
        yield pb.RegisterChunk(data=data[: len(data) // 2])
        sent_half.set()
        await asyncio.Event().wait()  # the client dies before the rest

    call = team.author.stub.RegisterVersion(messages(), metadata=team.author.metadata, timeout=30)
    await sent_half.wait()
    spool = registry.settings.store_dir / "tmp"
    for _ in range(100):  # until the server holds the half upload
        if list(spool.glob("upload-*")):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the server never spooled the first half")
    call.cancel()
    for _ in range(100):
        if not list(spool.glob("upload-*")):
            break
        await asyncio.sleep(0.02)
    assert not list(spool.glob("upload-*")), "the half upload was not cleaned up"
    assert await stored_state(db, "interrupted") == before


async def test_a_canary_with_columns_the_bundle_does_not_take_is_refused(team: Team, tmp_path: Path) -> None:
    canary = (FIXTURES / "frame.airbnb.json").read_text()
    code, message = await status_of(
        team.author.register("canary", bundle_variant(tmp_path, "canary"), canary_frame_json=canary)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "canary frame has columns the bundle does not take as input" in message


async def test_a_canary_that_does_not_score_is_refused(team: Team, tmp_path: Path) -> None:
    frame = {"schema": {"fields": [{"name": "demo:a", "type": "double"}]}, "rows": [[1.0]]}
    code, message = await status_of(
        team.author.register("mute", bundle_variant(tmp_path, "mute"), canary_frame_json=json.dumps(frame))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "the canary frame does not score with this bundle: frame is missing column 'demo:c'" in message


async def test_a_corrupted_stored_bundle_fails_download_with_data_loss(
    team: Team, registry: RunningRegistry, tmp_path: Path
) -> None:
    version = await team.author.register("rot", bundle_variant(tmp_path, "rot"))
    stored = registry.settings.store_dir / version.sha256[:2] / version.sha256
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    chunks = team.author.stub.DownloadBundle(
        pb.VersionRef(name="rot", version=version.version), metadata=team.author.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in chunks:
            pass
    assert refused.value.code() == grpc.StatusCode.DATA_LOSS


async def test_the_postgres_store_keeps_and_verifies_bundles(
    database_url: str, db: asyncpg.Pool, team: Team, tmp_path: Path
) -> None:
    settings = registry_settings(database_url, tmp_path / "unused", store="postgres", chunk_size=1024)
    async with (
        running_registry(settings) as pg_registry,
        grpc.aio.insecure_channel(pg_registry.address) as ch,
    ):
        author = Caller("alice", team.author.token, pb_grpc.RegistryStub(ch))
        bundle = bundle_variant(tmp_path, "in-postgres")
        version = await author.register("pgstore", bundle)
        chunks = await db.fetchval("SELECT count(*) FROM bundle_chunks WHERE sha256 = $1", version.sha256)
        assert chunks == -(-bundle.stat().st_size // 1024)
        data = b"".join(
            [
                c.data
                async for c in author.stub.DownloadBundle(
                    pb.VersionRef(name="pgstore", version=version.version), metadata=author.metadata
                )
            ]
        )
        assert data == bundle.read_bytes()
        await db.execute("UPDATE bundle_chunks SET data = 'x' WHERE sha256 = $1 AND seq = 0", version.sha256)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in author.stub.DownloadBundle(
                pb.VersionRef(name="pgstore", version=version.version), metadata=author.metadata
            ):
                pass
        assert refused.value.code() == grpc.StatusCode.DATA_LOSS


async def test_a_duplicate_token_name_is_refused(db: asyncpg.Pool, team: Team) -> None:
    with pytest.raises(AlreadyExistsError, match="a token named 'alice' already exists"):
        await create_token(db, "alice", "author")
