"""Watch streams: desired deployments per environment/pool and live scorer membership, woken by NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from registry.changes import DEPLOYMENT_SELECT
from registry.db import db_errors
from rtscore.errors import InvalidArgument, Unavailable
from rtscore.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DEPLOYMENTS = "rtscore_deployments"
MEMBERS = "rtscore_members"
MAX_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class Heartbeat:
    """What one heartbeat says: who the member is, for how long, and what it hosts or refused."""

    environment: str
    pool: str
    endpoint: str
    ttl_seconds: float
    health: str = ""
    hosted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    leave: bool = False


class Subscription:
    """Wakes one watcher when a notification for its key arrives."""

    def __init__(self, channel: str, matches: Callable[[str], bool]) -> None:
        self.channel = channel
        self.matches = matches
        self.changed = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Until a matching notification or for seconds, whichever is shorter."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), seconds)
        self.changed.clear()


class ChangeFeed:
    """One LISTEN connection per registry process, fanned out to every watcher; reconnects if lost."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._subs: set[Subscription] = set()
        self._closed = False
        self._reconnecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and LISTEN (idempotent)."""
        if self._conn is not None:
            return
        self._closed = False
        try:
            await self._connect()
        except (OSError, asyncpg.PostgresError) as err:
            raise Unavailable(f"cannot LISTEN on the registry database: {err}") from err

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        for channel in (DEPLOYMENTS, MEMBERS):
            await conn.add_listener(channel, self._notify)
        conn.add_termination_listener(self._lost)
        self._conn = conn

    def _lost(self, _conn: object) -> None:
        if self._closed:
            return
        log.warning("registry lost its LISTEN connection; reconnecting")
        self._conn = None
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                await self._connect()
                break
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        # notifications sent while nobody listened are gone: every watcher re-reads its state
        for sub in self._subs:
            sub.changed.set()

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        self._closed = True
        reconnecting, self._reconnecting = self._reconnecting, None
        await cancel_and_wait(reconnecting)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def _notify(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        for sub in self._subs:
            if sub.channel == channel and sub.matches(payload):
                sub.changed.set()

    @contextlib.contextmanager
    def subscribe(self, channel: str, environment: str, pool: str) -> Any:
        """A subscription to changes of environment (and pool, unless empty) while in the block."""
        prefix = f"{environment}/"

        def matches(payload: str) -> bool:
            return payload == prefix + pool if pool else payload.startswith(prefix)

        sub = Subscription(channel, matches)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)


class Watches:
    """Desired state and membership, as snapshots and as streams."""

    def __init__(self, pool: asyncpg.Pool, feed: ChangeFeed, poll_seconds: float) -> None:
        self.pool = pool
        self.feed = feed
        self.poll_seconds = poll_seconds

    async def desired_state(self, environment: str, pool: str) -> dict[str, Any]:
        """Live deployments of environment/pool and the revision they are at."""
        with db_errors():
            async with self.pool.acquire() as conn:
                known = await conn.fetchval("SELECT 1 FROM environments WHERE name = $1", environment)
                if not known:
                    raise InvalidArgument(f"unknown environment {environment!r}")
                revision = await conn.fetchval(
                    "SELECT COALESCE(max(revision), 0) FROM deployments"
                    " WHERE environment = $1 AND ($2 = '' OR pool = $2)",
                    environment,
                    pool,
                )
                rows = await conn.fetch(
                    DEPLOYMENT_SELECT + " WHERE d.environment = $1 AND ($2 = '' OR d.pool = $2)"
                    " AND d.role <> 'retired' ORDER BY m.name, v.version",
                    environment,
                    pool,
                )
        return {
            "environment": environment,
            "pool": pool,
            "revision": revision,
            "deployments": [dict(r) for r in rows],
        }

    async def watch_desired(
        self, environment: str, pool: str, since_revision: int
    ) -> AsyncIterator[dict[str, Any]]:
        """The current state if newer than since_revision, then one state per change."""
        with self.feed.subscribe(DEPLOYMENTS, environment, pool) as sub:
            last = since_revision
            first = since_revision == 0
            while True:
                state = await self.desired_state(environment, pool)
                if first or state["revision"] > last:
                    first = False
                    last = state["revision"]
                    yield state
                await sub.wait(self.poll_seconds)

    async def heartbeat(self, caller: str, beat: Heartbeat) -> datetime:
        """Keep beat.endpoint a member for beat.ttl_seconds more (or remove it when leaving); returns the
        expiry. A refusal the member had not reported before is written to the audit log."""
        if not beat.endpoint or ":" not in beat.endpoint:
            raise InvalidArgument(f"endpoint must be host:port, got {beat.endpoint!r}")
        ttl = beat.ttl_seconds
        if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_SECONDS):
            raise InvalidArgument(f"ttl_seconds must be within (0, {MAX_TTL_SECONDS:.0f}], got {ttl}")
        pool = beat.pool or "default"
        key = (beat.environment, pool, beat.endpoint)
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                if beat.leave:
                    await conn.execute(
                        "DELETE FROM members WHERE environment = $1 AND pool = $2 AND endpoint = $3", *key
                    )
                    left: datetime = await conn.fetchval("SELECT now()")
                    return left
                before = await conn.fetchval(
                    "SELECT refused FROM members WHERE environment = $1 AND pool = $2 AND endpoint = $3"
                    " AND expires_at > now() FOR UPDATE",
                    *key,
                )
                expires: datetime = await conn.fetchval(
                    """INSERT INTO members (environment, pool, endpoint, expires_at, health, hosted, refused)
                       VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6, $7)
                       ON CONFLICT (environment, pool, endpoint) DO UPDATE SET
                         expires_at = EXCLUDED.expires_at, health = EXCLUDED.health,
                         hosted = EXCLUDED.hosted, refused = EXCLUDED.refused
                       RETURNING expires_at""",
                    *key,
                    ttl,
                    beat.health,
                    beat.hosted,
                    beat.refused,
                )
                for refusal in _new_refusals(before or [], beat.refused):
                    await conn.execute(
                        """INSERT INTO events
                             (actor, action, model, version, environment, pool, reason, after)
                           VALUES ($1, 'scorer.refused', $2, $3, $4, $5, $6, $7)""",
                        caller,
                        refusal.get("name", ""),
                        refusal.get("version") or None,
                        beat.environment,
                        pool,
                        f"{beat.endpoint}: {refusal.get('reason', '')}",
                        {"endpoint": beat.endpoint, **refusal},
                    )
        return expires

    async def members(self, environment: str, pool: str) -> tuple[list[dict[str, Any]], float | None]:
        """Live members (endpoint, health, hosted, refused, expires_at), and seconds until the next one
        expires (None if none)."""
        with db_errors():
            rows = await self.pool.fetch(
                """SELECT endpoint, health, hosted, refused, expires_at,
                          extract(epoch FROM expires_at - now())::float8 AS left
                   FROM members WHERE environment = $1 AND pool = $2 AND expires_at > now()
                   ORDER BY endpoint""",
                environment,
                pool or "default",
            )
        soonest = min((r["left"] for r in rows), default=None)
        return [
            {k: r[k] for k in ("endpoint", "health", "hosted", "refused", "expires_at")} for r in rows
        ], soonest

    async def watch_members(self, environment: str, pool: str) -> AsyncIterator[list[dict[str, Any]]]:
        """The live members now, then again whenever one joins, leaves, expires or changes what it hosts."""
        pool = pool or "default"
        with self.feed.subscribe(MEMBERS, environment, pool) as sub:
            last: list[dict[str, Any]] | None = None
            while True:
                members, soonest = await self.members(environment, pool)
                shown = [{k: v for k, v in m.items() if k != "expires_at"} for m in members]
                if shown != last:
                    last = shown
                    yield members
                timeout = self.poll_seconds if soonest is None else min(self.poll_seconds, soonest + 0.01)
                await sub.wait(timeout)


def _new_refusals(before: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {(r.get("name"), r.get("version"), r.get("reason")) for r in before}
    return [r for r in now if (r.get("name"), r.get("version"), r.get("reason")) not in seen]
