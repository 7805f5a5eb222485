"""Artifact stores: bundle bytes content-addressed by sha256, verified on the way in and out."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import asyncpg

from registry.errors import DataLossError
from rtscore.errors import InvalidArgument, NotFound


class Spool:
    """An upload in progress: bytes go to a temporary file and are hashed as they arrive."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._max = max_bytes
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append a chunk."""
        self.size += len(data)
        if self.size > self._max:
            raise InvalidArgument(f"bundle larger than the registry's limit of {self._max} bytes")
        self._hash.update(data)
        self._file.write(data)

    def finish(self, expected_sha256: str, expected_size: int) -> str:
        """Close the file and check it against what the client announced; returns the sha256."""
        self._file.close()
        if expected_size and self.size != expected_size:
            raise InvalidArgument(
                f"upload truncated or padded: received {self.size} bytes,"
                f" the header announced {expected_size}"
            )
        digest = self._hash.hexdigest()
        if expected_sha256 and expected_sha256.lower() != digest:
            raise InvalidArgument(
                f"sha256 mismatch: the header announced {expected_sha256},"
                f" the bytes received hash to {digest}"
            )
        return digest

    def discard(self) -> None:
        """Remove the temporary file (idempotent)."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class ArtifactStore(Protocol):
    """Where bundle bytes live, keyed by their sha256."""

    name: str

    def spool(self, max_bytes: int) -> Spool:
        """A fresh upload spool on the store's filesystem."""
        ...

    async def put(self, sha256: str, spooled: Path) -> None:
        """Keep the verified spooled file under sha256 (a no-op if present); consumes the file."""
        ...

    def read(self, sha256: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The bytes in chunks; raises DataLossError at the end if they no longer hash to sha256."""
        ...


class LocalStore:
    """A directory: `<root>/ab/abcdef…` per bundle, written by atomic rename."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def spool(self, max_bytes: int) -> Spool:
        """A spool in the store's own tmp folder, so put() is a rename."""
        return Spool(self.root / "tmp", max_bytes)

    async def put(self, sha256: str, spooled: Path) -> None:
        """Move the spooled file into place."""
        target = self._path(sha256)
        if target.exists():
            await asyncio.to_thread(spooled.unlink, missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(spooled, target)

    async def read(self, sha256: str, chunk_size: int) -> AsyncIterator[bytes]:
        """Read the file back in chunks, verifying its hash."""
        path = self._path(sha256)
        if not path.exists():
            raise NotFound(f"bundle {sha256} is not in the local store at {self.root}")
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while chunk := await asyncio.to_thread(file.read, chunk_size):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha256:
            raise DataLossError(
                f"bundle {sha256} in {path} is corrupt: its bytes hash to {digest.hexdigest()}"
            )


class PostgresStore:
    """Bundles as chunked bytea rows in the registry's own database."""

    name = "postgres"

    def __init__(self, pool: asyncpg.Pool, spool_dir: Path, chunk_size: int) -> None:
        self.pool = pool
        self.spool_dir = spool_dir
        self.chunk_size = chunk_size

    def spool(self, max_bytes: int) -> Spool:
        """A spool in a local temporary folder."""
        return Spool(self.spool_dir, max_bytes)

    async def put(self, sha256: str, spooled: Path) -> None:
        """Copy the file into bundle_chunks in one transaction, so a failure leaves no rows."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # serialise two uploads of the same bytes
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", sha256)
                if await conn.fetchval("SELECT 1 FROM bundle_chunks WHERE sha256 = $1 LIMIT 1", sha256):
                    return
                with spooled.open("rb") as file:
                    seq = 0
                    while chunk := await asyncio.to_thread(file.read, self.chunk_size):
                        await conn.execute(
                            "INSERT INTO bundle_chunks (sha256, seq, data) VALUES ($1, $2, $3)",
                            sha256,
                            seq,
                            chunk,
                        )
                        seq += 1
        finally:
            await asyncio.to_thread(spooled.unlink, missing_ok=True)

    async def read(self, sha256: str, chunk_size: int) -> AsyncIterator[bytes]:
        """Stream the chunks in order, verifying the hash."""
        digest = hashlib.sha256()
        seq, found = 0, False
        while True:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT seq, data FROM bundle_chunks WHERE sha256 = $1 AND seq >= $2"
                    " ORDER BY seq LIMIT 16",
                    sha256,
                    seq,
                )
            if not rows:
                break
            found = True
            for row in rows:
                digest.update(row["data"])
                yield bytes(row["data"])
                seq = row["seq"] + 1
        if not found:
            raise NotFound(f"bundle {sha256} is not in the Postgres store")
        if digest.hexdigest() != sha256:
            raise DataLossError(f"bundle {sha256} in the Postgres store is corrupt")
