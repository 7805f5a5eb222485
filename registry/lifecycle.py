"""The deployment lifecycle: deploy, promote, retire, rollback, each one transaction with its rules."""

from __future__ import annotations

from typing import Any

import asyncpg

from registry.access import Caller
from registry.changes import (
    DEPLOYMENT_SELECT,
    ROLES,
    Target,
    check_champion_unchanged,
    check_inputs_kept,
    deployment_state,
    environment_row,
    load_target,
    lock_model,
    model_id_of,
    record_event,
    require_reason,
)
from registry.db import db_errors
from registry.evaluations import check_gate
from rtscore.errors import FailedPrecondition, InvalidArgument

DEFAULT_POOL = "default"

SET_ROLE = """
UPDATE deployments SET role = $2, reason = $3, updated_by = $4, updated_at = now(),
       revision = nextval('deployment_revision'),
       last_champion_at = CASE WHEN role = 'champion' AND $2 <> 'champion' THEN clock_timestamp()
                               ELSE last_champion_at END
WHERE id = $1
"""


class Lifecycle:
    """Changes deployments; every rule is checked inside the change's transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def deploy(
        self,
        caller: Caller,
        name: str,
        version: int,
        environment: str,
        *,
        role: str,
        reason: str,
        pool: str = "",
        traffic_share: float = 0.0,
    ) -> dict[str, Any]:
        """Deploy a version to an environment and pool as shadow or champion."""
        reason = require_reason(reason)
        if role not in ROLES:
            raise InvalidArgument(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        share = traffic_share or 1.0
        if not 0.0 < share <= 1.0:
            raise InvalidArgument(f"traffic_share must be within (0, 1], got {traffic_share}")
        pool = pool or DEFAULT_POOL
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                target = await load_target(conn, name, version, environment)
                await self._check_order(conn, target)
                current = target.current
                if current is not None and current["role"] != "retired":
                    raise FailedPrecondition(
                        f"{target.label} is already {current['role']} in {environment}"
                        f" (pool {current['pool']}):"
                        " use promote, retire or rollback to change it"
                    )
                if current is not None and current["reason"] == reason:
                    raise FailedPrecondition(
                        f"{target.label} was retired in {environment} for {reason!r}:"
                        " deploying it again needs a new reason"
                    )
                if role == "champion":
                    await check_champion_unchanged(conn, target)
                    await check_inputs_kept(conn, target)
                    await check_gate(conn, caller, target)
                    await self._demote_champion(conn, caller, target, reason)
                row = await conn.fetchrow(
                    """INSERT INTO deployments (model_id, version_id, environment, pool, role, traffic_share,
                         reason, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                       ON CONFLICT (version_id, environment) DO UPDATE SET pool = $4, role = $5,
                         traffic_share = $6, reason = $7, updated_by = $8, updated_at = now(),
                         revision = nextval('deployment_revision')
                       RETURNING id""",
                    target.model_id,
                    target.version_id,
                    environment,
                    pool,
                    role,
                    share,
                    reason,
                    caller.name,
                )
                after = {"role": role, "pool": pool, "traffic_share": share}
                await record_event(
                    conn, caller, "deploy", target, reason, deployment_state(current), after, pool=pool
                )
                return await self._read(conn, row["id"])

    async def promote(
        self, caller: Caller, name: str, version: int, environment: str, reason: str
    ) -> dict[str, Any]:
        """Make a shadow version champion, demoting the previous champion in the same transaction."""
        return await self._change_role(caller, name, version, environment, reason, "promote", "champion")

    async def retire(
        self, caller: Caller, name: str, version: int, environment: str, reason: str
    ) -> dict[str, Any]:
        """Take a version out of an environment."""
        return await self._change_role(caller, name, version, environment, reason, "retire", "retired")

    async def _change_role(
        self, caller: Caller, name: str, version: int, environment: str, reason: str, action: str, role: str
    ) -> dict[str, Any]:
        reason = require_reason(reason)
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                target = await load_target(conn, name, version, environment)
                current = target.current
                if current is None:
                    raise FailedPrecondition(f"{target.label} is not deployed in {environment}")
                if role == "champion" and current["role"] != "shadow":
                    raise FailedPrecondition(
                        f"only a shadow version can be promoted: {target.label} is {current['role']}"
                        f" in {environment}"
                    )
                if role == "retired" and current["role"] == "retired":
                    raise FailedPrecondition(f"{target.label} is already retired in {environment}")
                if role == "champion":
                    await check_champion_unchanged(conn, target)
                    await check_inputs_kept(conn, target)
                    await check_gate(conn, caller, target)
                    await self._demote_champion(conn, caller, target, reason)
                await conn.execute(SET_ROLE, current["id"], role, reason, caller.name)
                before = deployment_state(current)
                after = {**(before or {}), "role": role}
                await record_event(conn, caller, action, target, reason, before, after, pool=current["pool"])
                return await self._read(conn, current["id"])

    async def rollback(self, caller: Caller, name: str, environment: str, reason: str) -> dict[str, Any]:
        """Re-promote the version that was champion before the current one.

        The way back skips the evaluation gate on purpose: the version passed it when it first became
        champion, and a rollback must not wait for a new shadow run. It still needs an approver's role.
        """
        reason = require_reason(reason)
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await environment_row(conn, environment)
                model_id = await model_id_of(conn, name)
                await lock_model(conn, model_id)
                previous = await conn.fetchrow(
                    """SELECT d.id, v.version FROM deployments d JOIN versions v ON v.id = d.version_id
                       WHERE d.model_id = $1 AND d.environment = $2 AND d.role <> 'champion'
                         AND d.last_champion_at IS NOT NULL
                       ORDER BY d.last_champion_at DESC LIMIT 1""",
                    model_id,
                    environment,
                )
                if previous is None:
                    raise FailedPrecondition(
                        f"{name} has no previous champion in {environment} to roll back to"
                    )
                target = await load_target(conn, name, previous["version"], environment)
                await self._demote_champion(conn, caller, target, reason)
                await conn.execute(SET_ROLE, previous["id"], "champion", reason, caller.name)
                before = deployment_state(target.current)
                after = {**(before or {}), "role": "champion"}
                pool = target.current["pool"] if target.current else None
                await record_event(conn, caller, "rollback", target, reason, before, after, pool=pool)
                return await self._read(conn, previous["id"])

    async def _check_order(self, conn: asyncpg.Connection, target: Target) -> None:
        previous = await conn.fetchrow(
            "SELECT name FROM environments WHERE position < $1 ORDER BY position DESC LIMIT 1",
            target.position,
        )
        if previous is None:
            return
        reached = await conn.fetchval(
            "SELECT 1 FROM deployments WHERE version_id = $1 AND environment = $2",
            target.version_id,
            previous["name"],
        )
        if not reached:
            raise FailedPrecondition(
                f"{target.label} has not been deployed to {previous['name']} yet:"
                f" a version reaches {target.environment} only after {previous['name']}"
            )

    async def _demote_champion(
        self, conn: asyncpg.Connection, caller: Caller, target: Target, reason: str
    ) -> None:
        champion = await conn.fetchrow(
            """SELECT d.*, v.version FROM deployments d JOIN versions v ON v.id = d.version_id
               WHERE d.model_id = $1 AND d.environment = $2 AND d.role = 'champion'""",
            target.model_id,
            target.environment,
        )
        if champion is None or champion["version_id"] == target.version_id:
            return
        why = f"replaced by {target.label}: {reason}"
        await conn.execute(SET_ROLE, champion["id"], "retired", why, caller.name)
        before = deployment_state(champion)
        await record_event(
            conn,
            caller,
            "demote",
            target,
            why,
            before,
            {**(before or {}), "role": "retired"},
            version=champion["version"],
            pool=champion["pool"],
        )

    async def _read(self, conn: asyncpg.Connection, deployment_id: int) -> dict[str, Any]:
        return dict(await conn.fetchrow(DEPLOYMENT_SELECT + " WHERE d.id = $1", deployment_id))
