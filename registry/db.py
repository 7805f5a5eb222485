"""Postgres access: the pool, ordered migrations under an advisory lock, and DB errors by class."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from registry.errors import AbortedError, AlreadyExistsError
from rtscore.errors import FailedPrecondition, InvalidArgument, RtscoreError, Unavailable
from rtscore.migrations import Migrations

# Any fixed key works as long as every registry uses the same one.
MIGRATIONS = Migrations("registry", "schema_migrations", 0x72747363_6F7265)


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with the registry, in order."""
    return MIGRATIONS.files()


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations this database lacks; returns their names. Safe to run concurrently."""
    return await MIGRATIONS.apply(conn)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool with JSON codecs, after the schema is migrated."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as err:
        raise Unavailable(f"cannot reach the registry database: {err}") from err
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    return pool


@asynccontextmanager
async def open_pool(dsn: str, *, max_size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    """`async with` form of connect_pool; closes the pool gracefully."""
    pool = await connect_pool(dsn, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


def _translate(err: asyncpg.PostgresError) -> RtscoreError:
    detail = getattr(err, "detail", None)
    message = f"{err}" + (f" ({detail})" if detail else "")
    if isinstance(err, asyncpg.UniqueViolationError):
        if getattr(err, "constraint_name", "") == "deployments_one_champion":
            return FailedPrecondition("the model already has a champion in this environment")
        return AlreadyExistsError(message)
    if isinstance(err, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return AbortedError(f"a concurrent change won, retry: {message}")
    if isinstance(err, asyncpg.LockNotAvailableError):
        return AbortedError("another change to this model is still in progress; retry")
    if isinstance(err, asyncpg.ForeignKeyViolationError | asyncpg.CheckViolationError):
        return InvalidArgument(message)
    if isinstance(err, asyncpg.InsufficientPrivilegeError):
        return FailedPrecondition(message)
    if isinstance(err, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return Unavailable(message)
    return RtscoreError(f"database error {err.sqlstate}")


@contextmanager
def db_errors() -> Iterator[None]:
    """Turn asyncpg errors into registry errors by SQLSTATE class."""
    try:
        yield
    except asyncpg.PostgresError as err:
        raise _translate(err) from err
    except (OSError, asyncpg.InterfaceError) as err:
        raise Unavailable(f"registry database unavailable: {err}") from err


def row_dict(row: asyncpg.Record | None) -> dict[str, Any] | None:
    """A record as a plain dict (None stays None)."""
    return dict(row) if row is not None else None
