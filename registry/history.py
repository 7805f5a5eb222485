"""The audit log, read back with filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from registry.db import db_errors
from rtscore.errors import InvalidArgument


def parse_time(value: str, what: str) -> datetime | None:
    """An RFC 3339 bound, or None when empty."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidArgument(f"{what} is not an RFC 3339 time: {value!r}") from err
    if parsed.tzinfo is None:
        raise InvalidArgument(f"{what} needs a time zone (e.g. 2026-01-31T12:00:00Z): {value!r}")
    return parsed


async def read_history(
    pool: asyncpg.Pool,
    *,
    name: str = "",
    version: int = 0,
    environment: str = "",
    actor: str = "",
    since: str = "",
    until: str = "",
    limit: int = 0,
) -> list[dict[str, Any]]:
    """Events matching every given filter, oldest first."""
    start, end = parse_time(since, "since"), parse_time(until, "until")
    with db_errors():
        rows = await pool.fetch(
            """SELECT id, at, actor, action, model AS name, version, environment, pool, reason, before, after
               FROM events
               WHERE ($1 = '' OR model = $1) AND ($2 = 0 OR version = $2) AND ($3 = '' OR environment = $3)
                 AND ($4 = '' OR actor = $4) AND ($5::timestamptz IS NULL OR at >= $5)
                 AND ($6::timestamptz IS NULL OR at <= $6)
               ORDER BY id LIMIT $7""",
            name,
            version,
            environment,
            actor,
            start,
            end,
            limit or 10000,
        )
    return [dict(r) for r in rows]
