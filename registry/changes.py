"""The pieces every deployment change shares: locking a model, reading a target, the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from registry.access import Caller
from registry.errors import AbortedError
from rtscore.errors import FailedPrecondition, InvalidArgument, NotFound

ROLES = ("shadow", "champion")

DEPLOYMENT_SELECT = """
SELECT m.name, v.version, d.environment, d.pool, d.role, d.traffic_share, v.sha256, d.revision,
       d.updated_at, d.updated_by, d.reason
FROM deployments d JOIN versions v ON v.id = d.version_id JOIN models m ON m.id = d.model_id
"""


@dataclass
class Target:
    """A version in an environment, as read (and locked) at the start of a change."""

    name: str
    version: int
    model_id: int
    version_id: int
    author: str
    environment: str
    position: int
    gated: bool
    current: asyncpg.Record | None  # this version's deployment row in the environment, if any
    champion_seen: int | None = None  # the champion's version id when the change started

    @property
    def label(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"


def require_reason(reason: str) -> str:
    """Every change says why; the reason goes into the audit log."""
    if not reason.strip():
        raise InvalidArgument("a reason is required for every change (it is kept in the audit log)")
    return reason.strip()


async def environment_row(conn: asyncpg.Connection, environment: str) -> asyncpg.Record:
    """The environment's row; NotFound lists the known ones."""
    row = await conn.fetchrow("SELECT name, position, gated FROM environments WHERE name = $1", environment)
    if row is None:
        known = [r["name"] for r in await conn.fetch("SELECT name FROM environments ORDER BY position")]
        raise NotFound(f"unknown environment {environment!r}: known are {', '.join(known)}")
    return row


# How long a change waits for another change to the same model before it is ABORTED.
LOCK_WAIT = "5s"


async def model_id_of(conn: asyncpg.Connection, name: str) -> int:
    """The model's id; NotFound if there is no such model."""
    model_id = await conn.fetchval("SELECT id FROM models WHERE name = $1", name)
    if model_id is None:
        raise NotFound(f"unknown model {name!r}")
    return int(model_id)


async def lock_model(conn: asyncpg.Connection, model_id: int) -> None:
    """Serialise changes to one model: hold its row until this transaction ends."""
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
    await conn.execute("SELECT 1 FROM models WHERE id = $1 FOR UPDATE", model_id)


async def champion_of(conn: asyncpg.Connection, model_id: int, environment: str) -> int | None:
    """Id of the version that is champion of the model in environment, if any."""
    value = await conn.fetchval(
        "SELECT version_id FROM deployments WHERE model_id = $1 AND environment = $2 AND role = 'champion'",
        model_id,
        environment,
    )
    return int(value) if value is not None else None


async def load_target(conn: asyncpg.Connection, name: str, version: int, environment: str) -> Target:
    """Lock the model and read the version and its deployment in environment."""
    env = await environment_row(conn, environment)
    model_id = await model_id_of(conn, name)
    # what the caller's change is based on, read before waiting for a concurrent change to finish
    champion_seen = await champion_of(conn, model_id, environment)
    await lock_model(conn, model_id)
    row = await conn.fetchrow(
        "SELECT id, author FROM versions WHERE model_id = $1 AND version = $2", model_id, version
    )
    if row is None:
        raise NotFound(f"model {name!r} has no version {version}")
    current = await conn.fetchrow(
        "SELECT * FROM deployments WHERE version_id = $1 AND environment = $2", row["id"], environment
    )
    return Target(
        name,
        version,
        model_id,
        row["id"],
        row["author"],
        env["name"],
        env["position"],
        env["gated"],
        current,
        champion_seen,
    )


async def check_champion_unchanged(conn: asyncpg.Connection, target: Target) -> None:
    """ABORTED if another change replaced the champion while this one waited for the model's lock."""
    now = await champion_of(conn, target.model_id, target.environment)
    if now != target.champion_seen:
        version = await conn.fetchval("SELECT version FROM versions WHERE id = $1", now) if now else None
        winner = f"{target.name}@{version}" if version else "no version"
        raise AbortedError(
            f"a concurrent change made {winner} champion of {target.name} in {target.environment}"
            f" while this change to {target.label} waited; retry if it should still go ahead"
        )


async def check_inputs_kept(conn: asyncpg.Connection, target: Target) -> None:
    """FAILED_PRECONDITION when the version would replace a champion that reads other inputs.

    The pool's extractors and shadow workers make the champion's features from their spec: a champion
    that reads other columns would have every call refused until each of them changed spec. Such a
    version is a new model, registered under a name of its own and rolled out beside this one.
    """
    champion = target.champion_seen
    if champion is None or champion == target.version_id:
        return
    rows = await conn.fetch(
        "SELECT id, version, input_schema FROM versions WHERE id = ANY($1::bigint[])",
        [champion, target.version_id],
    )
    by_id = {row["id"]: row for row in rows}
    old, new = by_id[champion], by_id[target.version_id]
    problems = input_differences(old["input_schema"], new["input_schema"])
    if problems:
        raise FailedPrecondition(
            f"{target.label} reads other inputs than {target.name}@{old['version']}, champion in"
            f" {target.environment} ({'; '.join(problems)}): the pool's extractors and shadow workers make"
            f" the champion's features, so its calls would be refused; register it as a model of its own"
        )


def input_differences(champion: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> list[str]:
    """One phrase per input column the candidate adds, drops or types otherwise; empty when they match."""

    def types(schema: list[dict[str, Any]]) -> dict[str, str]:
        return {field["name"]: json.dumps(field.get("type"), sort_keys=True) for field in schema}

    was, now = types(champion), types(candidate)
    problems = [f"reads {name!r}, which the champion does not" for name in now if name not in was]
    problems += [f"does not read {name!r}" for name in was if name not in now]
    problems += [
        f"reads {name!r} as {now[name]}, the champion as {was[name]}"
        for name in now
        if name in was and now[name] != was[name]
    ]
    return problems


async def record_event(
    conn: asyncpg.Connection,
    caller: Caller,
    action: str,
    target: Target,
    reason: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    version: int | None = None,
    pool: str | None = None,
) -> None:
    """Append one event to the audit log."""
    await conn.execute(
        """INSERT INTO events (actor, action, model, version, environment, pool, reason, before, after)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        caller.name,
        action,
        target.name,
        version if version is not None else target.version,
        target.environment,
        pool,
        reason,
        before,
        after,
    )


def deployment_state(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"role": row["role"], "pool": row["pool"], "traffic_share": row["traffic_share"]}
