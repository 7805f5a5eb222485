"""Bearer tokens (only their sha256 is stored) and which role may call what."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from registry.db import db_errors
from registry.errors import AlreadyExistsError, PermissionDeniedError, UnauthenticatedError
from rtscore.errors import InvalidArgument

ROLES = ("admin", "author", "approver", "service")
READ = frozenset(ROLES)

# The calls each role may make; `admin` may make them all.
PERMISSIONS: dict[str, frozenset[str]] = {
    "RegisterVersion": frozenset({"admin", "author"}),
    "GetVersion": READ,
    "ListVersions": READ,
    "DownloadBundle": READ,
    "Deploy": frozenset({"admin", "author", "approver"}),
    "Promote": frozenset({"admin", "approver"}),
    "Retire": frozenset({"admin", "approver"}),
    "Rollback": frozenset({"admin", "approver"}),
    "RecordEvaluation": frozenset({"admin", "service"}),
    "ListEvaluations": READ,
    "History": READ,
    "WatchDeployments": READ,
    "Heartbeat": frozenset({"admin", "service"}),
    "WatchMembers": READ,
}

# Roles that may make a version champion (directly or by promotion).
APPROVERS = frozenset({"admin", "approver"})


@dataclass(frozen=True)
class Caller:
    """Who is calling: the token's name (the actor in events) and role."""

    name: str
    role: str


def token_hash(token: str) -> str:
    """What the database keeps of a token; tokens are random, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def authorize(caller: Caller, method: str) -> None:
    """Raise PermissionDeniedError unless the caller's role may call method."""
    allowed = PERMISSIONS.get(method, frozenset())
    if caller.role != "admin" and caller.role not in allowed:
        roles = ", ".join(sorted(allowed | {"admin"}))
        raise PermissionDeniedError(
            f"{method} needs one of the roles {roles}; {caller.name} has role {caller.role}"
        )


async def create_token(pool: asyncpg.Pool, name: str, role: str) -> str:
    """Create a token for name with role; the token itself is returned once and never stored."""
    if role not in ROLES:
        raise InvalidArgument(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    if not name.strip():
        raise InvalidArgument("a token needs a name (it becomes the actor in the audit log)")
    token = "rts_" + secrets.token_urlsafe(32)
    with db_errors():
        async with pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval("SELECT 1 FROM api_tokens WHERE name = $1", name)
            if exists:
                raise AlreadyExistsError(f"a token named {name!r} already exists")
            await conn.execute(
                "INSERT INTO api_tokens (name, role, token_sha256) VALUES ($1, $2, $3)",
                name,
                role,
                token_hash(token),
            )
            await conn.execute(
                "INSERT INTO events (actor, action, reason, after)"
                " VALUES ('bootstrap', 'token.create', '', $1)",
                {"name": name, "role": role},
            )
    return token


async def authenticate(pool: asyncpg.Pool, authorization: str | None) -> Caller:
    """The caller behind an `authorization: Bearer …` header value."""
    if not authorization:
        raise UnauthenticatedError(
            "missing bearer token: send `authorization: Bearer <token>` (RTSCORE_TOKEN)"
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("malformed authorization header: expected `Bearer <token>`")
    with db_errors():
        row = await pool.fetchrow(
            "SELECT name, role FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
            token_hash(token.strip()),
        )
    if row is None:
        raise UnauthenticatedError("unknown or revoked token")
    return Caller(row["name"], row["role"])
