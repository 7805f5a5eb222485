"""The local Postgres really stores and returns rows (asyncpg, the driver rtscore uses)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

pytestmark = pytest.mark.services


@pytest.fixture
async def connection(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def table(connection: asyncpg.Connection) -> AsyncIterator[str]:
    name = f"roundtrip_{uuid.uuid4().hex[:12]}"
    await connection.execute(
        f"create table {name} (id bigint primary key, txn text not null, score double precision)"
    )
    try:
        yield name
    finally:
        await connection.execute(f"drop table if exists {name}")


async def test_inserted_rows_are_selected_back_unchanged(connection: asyncpg.Connection, table: str) -> None:
    rows = [(i, f"txn-{i:04d}", i / 7) for i in range(200)]
    await connection.executemany(f"insert into {table} values ($1, $2, $3)", rows)

    selected = await connection.fetch(f"select id, txn, score from {table} order by id")

    assert [tuple(record) for record in selected] == rows


async def test_duplicate_key_raises_unique_violation(connection: asyncpg.Connection, table: str) -> None:
    await connection.execute(f"insert into {table} values (1, 'first', 0.5)")

    with pytest.raises(asyncpg.UniqueViolationError):
        await connection.execute(f"insert into {table} values (1, 'second', 0.9)")

    assert await connection.fetchval(f"select txn from {table} where id = 1") == "first"
