"""The shadow tier's Postgres: its own ordered migrations under an advisory lock, as the registry's are."""

from __future__ import annotations

import asyncpg

from rtscore.errors import Unavailable
from rtscore.migrations import Migrations

# Not the registry's key: both may migrate the same database at once without waiting on each other.
MIGRATIONS = Migrations("shadow", "shadow_schema_migrations", 0x72747363_5348)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the shadow migrations this database lacks; returns their names. Safe to run concurrently."""
    return await MIGRATIONS.apply(conn)


async def connect_pool(dsn: str, *, max_size: int = 4) -> asyncpg.Pool:
    """A pool on the score database, after the schema is migrated."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as err:
        raise Unavailable(f"cannot reach the shadow database: {err}") from err
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, timeout=10)
    return pool
