"""The shadow tier's Postgres: its own ordered migrations under an advisory lock, as the registry's are."""

from __future__ import annotations

from importlib import resources

import asyncpg

from rtscore.errors import Unavailable

# Not the registry's key: both may migrate the same database at once without waiting on each other.
MIGRATION_LOCK = 0x72747363_5348


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with the shadow tier, in order."""
    folder = resources.files("shadow") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text()) for f in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the shadow migrations this database lacks; returns their names. Safe to run concurrently."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS shadow_schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM shadow_schema_migrations")}
        for name, sql in migrations():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO shadow_schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


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
