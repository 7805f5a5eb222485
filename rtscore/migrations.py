"""Ordered SQL migrations shipped in a package's `migrations/` folder, applied once each under an
advisory lock, so that any number of processes may migrate the same database at once."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import asyncpg


@dataclass(frozen=True)
class Migrations:
    """One component's migrations: the package holding them, its ledger table and its lock key (a
    component of its own never waits on another's lock)."""

    package: str
    table: str
    lock: int

    def files(self) -> list[tuple[str, str]]:
        """(name, sql) of every migration shipped with the package, in order."""
        folder = resources.files(self.package) / "migrations"
        found = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
        return [(f.name, f.read_text()) for f in found]

    async def apply(self, conn: asyncpg.Connection) -> list[str]:
        """Apply the migrations this database lacks, each in its own transaction; returns their names."""
        applied: list[str] = []
        await conn.execute("SELECT pg_advisory_lock($1)", self.lock)
        try:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table}"
                " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {self.table}")}
            for name, sql in self.files():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(f"INSERT INTO {self.table} (name) VALUES ($1)", name)
                applied.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", self.lock)
        return applied
