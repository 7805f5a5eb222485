"""Versions and their bundles: register (streamed, verified, validated), read, list, download."""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from registry.access import Caller
from registry.db import db_errors
from registry.store import ArtifactStore
from rtscore.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

VERSION_SELECT = """
SELECT m.name, v.version, v.sha256, b.size, v.input_schema, v.output_schema, v.bundle_meta,
       v.canary_frame, v.canary_expected, v.metrics, v.tags, v.author, v.created_at
FROM versions v JOIN models m ON m.id = v.model_id JOIN bundles b ON b.sha256 = v.sha256
"""

# (spooled bundle, canary frame or None) -> meta, schemas and the canary's output
BundleInspector = Callable[[Path, Any], dict[str, Any]]


def inspect_with_scorer(path: Path, canary: Any) -> dict[str, Any]:
    """Read a bundle with the scorer's Bundle.ML reader and score the canary frame with it."""
    # imported here: the scorer's runtime is heavy and only registration needs it
    reader = importlib.import_module("scorer.bundle")
    frames = importlib.import_module("scorer.frame")
    try:
        # no forest cache: the registry only checks bundles, scorers compile them
        bundle = reader.load_bundle(path, cache=None)
        meta = dict(bundle.describe())
    except reader.BundleError as err:
        # the spool file's name means nothing to the caller
        message = str(err).replace(str(path), "the uploaded bundle")
        raise InvalidArgument(f"not a valid Bundle.ML bundle: {message}") from err
    if canary is not None:
        check_canary(canary, meta.get("input_schema", []))
        try:
            meta["canary_output"] = bundle.transform(frames.LeapFrame.from_mleap_json(canary)).to_mleap_json()
        except (reader.FrameError, reader.BundleError) as err:
            raise InvalidArgument(f"the canary frame does not score with this bundle: {err}") from err
    return meta


@dataclass
class Registration:
    """What a client announces before streaming a bundle's bytes."""

    name: str
    sha256: str = ""
    size: int = 0
    canary_frame: Any = None
    canary_expected: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def check_name(name: str) -> None:
    """Model names are short identifiers, because they appear in `name@version` addresses."""
    if not NAME.match(name):
        raise InvalidArgument(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )


def check_canary(frame: Any, input_schema: list[dict[str, Any]]) -> None:
    """A canary frame must be a LeapFrame whose columns the bundle takes as input."""
    if frame is None:
        return
    if not isinstance(frame, dict) or not isinstance(frame.get("schema"), dict) or "rows" not in frame:
        raise InvalidArgument(
            "canary frame is not a MLeap JSON LeapFrame: expected {'schema': {...}, 'rows': [...]}"
        )
    inputs = {f.get("name") for f in input_schema}
    names = [f.get("name") for f in frame["schema"].get("fields", [])]
    unknown = [n for n in names if n not in inputs]
    if unknown:
        raise InvalidArgument(f"canary frame has columns the bundle does not take as input: {unknown}")


class Catalog:
    """Registers versions and serves them back."""

    def __init__(
        self, pool: asyncpg.Pool, store: ArtifactStore, *, max_bundle_bytes: int, inspector: BundleInspector
    ) -> None:
        self.pool = pool
        self.store = store
        self.max_bundle_bytes = max_bundle_bytes
        self.inspector = inspector

    async def register(
        self, caller: Caller, reg: Registration, chunks: AsyncIterator[bytes]
    ) -> tuple[dict[str, Any], bool]:
        """Store the streamed bundle and record a version; (version, created). Nothing stays on failure."""
        check_name(reg.name)
        if not SHA256.match(reg.sha256):
            raise InvalidArgument(
                "the upload header must carry the bundle's sha256 as 64 lowercase hex digits"
            )
        spool = self.store.spool(self.max_bundle_bytes)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(spool.write, chunk)
            sha256 = spool.finish(reg.sha256, reg.size)
            existing = await self._by_sha(reg.name, sha256)
            if existing is not None:  # checked first: reading a large bundle again would be wasted
                return existing, False
            meta = await asyncio.to_thread(self.inspector, spool.path, reg.canary_frame)
            if reg.canary_expected is None:
                reg.canary_expected = meta.get("canary_output")
            await self.store.put(sha256, spool.path)
            return await self._insert(caller, reg, sha256, spool.size, meta)
        finally:
            spool.discard()

    async def _by_sha(self, name: str, sha256: str) -> dict[str, Any] | None:
        with db_errors():
            row = await self.pool.fetchrow(
                VERSION_SELECT + " WHERE m.name = $1 AND v.sha256 = $2", name, sha256
            )
        return dict(row) if row else None

    async def _insert(
        self, caller: Caller, reg: Registration, sha256: str, size: int, meta: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        bundle_meta = {k: meta.get(k) for k in ("name", "format", "mleap_version")}
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO models (name, created_by) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    reg.name,
                    caller.name,
                )
                model_id = await conn.fetchval("SELECT id FROM models WHERE name = $1 FOR UPDATE", reg.name)
                row = await conn.fetchrow(
                    VERSION_SELECT + " WHERE v.model_id = $1 AND v.sha256 = $2", model_id, sha256
                )
                if row is not None:  # the same bytes won a race with this call
                    return dict(row), False
                await conn.execute(
                    "INSERT INTO bundles (sha256, size, store) VALUES ($1, $2, $3)"
                    " ON CONFLICT (sha256) DO NOTHING",
                    sha256,
                    size,
                    self.store.name,
                )
                version = await conn.fetchval(
                    "SELECT COALESCE(max(version), 0) + 1 FROM versions WHERE model_id = $1", model_id
                )
                await conn.execute(
                    """INSERT INTO versions (model_id, version, sha256, input_schema, output_schema,
                         bundle_meta,
                        canary_frame, canary_expected, metrics, tags, author)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
                    model_id,
                    version,
                    sha256,
                    meta.get("input_schema", []),
                    meta.get("output_schema", []),
                    bundle_meta,
                    reg.canary_frame,
                    reg.canary_expected,
                    reg.metrics,
                    reg.tags,
                    caller.name,
                )
                await conn.execute(
                    """INSERT INTO events (actor, action, model, version, reason, after)
                       VALUES ($1, 'register', $2, $3, $4, $5)""",
                    caller.name,
                    reg.name,
                    version,
                    reg.reason or "registered",
                    {"sha256": sha256, "size": size, "metrics": reg.metrics, "tags": reg.tags},
                )
                row = await conn.fetchrow(
                    VERSION_SELECT + " WHERE v.model_id = $1 AND v.version = $2", model_id, version
                )
        return dict(row), True

    async def get(self, name: str, version: int) -> dict[str, Any]:
        """One version; NotFound names what is missing."""
        with db_errors():
            row = await self.pool.fetchrow(
                VERSION_SELECT + " WHERE m.name = $1 AND v.version = $2", name, version
            )
            if row is None:
                known = await self.pool.fetchval("SELECT 1 FROM models WHERE name = $1", name)
        if row is None:
            if not known:
                raise NotFound(f"unknown model {name!r}")
            raise NotFound(f"model {name!r} has no version {version}")
        return dict(row)

    async def list(
        self, name: str = "", tags: dict[str, str] | None = None, environment: str = "", limit: int = 0
    ) -> list[dict[str, Any]]:
        """Versions, newest first, filtered by model, tags and live deployment in an environment."""
        sql = VERSION_SELECT + " WHERE ($1 = '' OR m.name = $1) AND v.tags @> $2"
        sql += """ AND ($3 = '' OR EXISTS (SELECT 1 FROM deployments d WHERE d.version_id = v.id
                   AND d.environment = $3 AND d.role <> 'retired'))"""
        sql += " ORDER BY m.name, v.version DESC LIMIT $4"
        with db_errors():
            rows = await self.pool.fetch(sql, name, tags or {}, environment, limit or 1000)
            if (
                name
                and not rows
                and not await self.pool.fetchval("SELECT 1 FROM models WHERE name = $1", name)
            ):
                raise NotFound(f"unknown model {name!r}")
        return [dict(r) for r in rows]

    async def download(
        self, name: str, version: int, chunk_size: int
    ) -> tuple[dict[str, Any], AsyncIterator[bytes]]:
        """The version and its verified bytes in chunks."""
        row = await self.get(name, version)
        return row, self.store.read(row["sha256"], chunk_size)
