"""Shadow-tier evaluations and the promotion gate that reads them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import asyncpg

from registry.access import APPROVERS, Caller
from registry.changes import Target, champion_of, environment_row, model_id_of
from registry.db import db_errors
from registry.errors import PermissionDeniedError
from registry.settings import EvaluationThresholds
from rtscore.errors import FailedPrecondition, InvalidArgument, NotFound

EVALUATION_SELECT = """
SELECT e.id, m.name, c.version AS candidate_version, COALESCE(p.version, 0) AS champion_version,
       e.environment,
       e.sample_size, e.agreement, e.score_distance, e.candidate_latency_p99_ms, e.champion_latency_p99_ms,
       e.passed, e.verdict, e.recorded_by, e.recorded_at, e.notes
FROM evaluations e JOIN models m ON m.id = e.model_id JOIN versions c ON c.id = e.candidate_id
LEFT JOIN versions p ON p.id = e.champion_id
"""


@dataclass
class EvaluationReport:
    """Candidate vs champion on the same shadow traffic."""

    name: str
    candidate_version: int
    environment: str
    sample_size: int
    agreement: float
    score_distance: float
    champion_version: int = 0
    candidate_latency_p99_ms: float = 0.0
    champion_latency_p99_ms: float = 0.0
    notes: str = ""

    def check(self) -> None:
        """Reject numbers that cannot come from a real evaluation."""
        values = (
            self.agreement,
            self.score_distance,
            self.candidate_latency_p99_ms,
            self.champion_latency_p99_ms,
        )
        if not all(math.isfinite(v) for v in values):
            raise InvalidArgument("evaluation figures must be finite numbers")
        if self.sample_size < 0:
            raise InvalidArgument(f"sample_size must be >= 0, got {self.sample_size}")
        if not 0.0 <= self.agreement <= 1.0:
            raise InvalidArgument(f"agreement must be within [0, 1], got {self.agreement}")
        if self.score_distance < 0:
            raise InvalidArgument(f"score_distance must be >= 0, got {self.score_distance}")


def verdict(report: EvaluationReport, limits: EvaluationThresholds) -> tuple[bool, str]:
    """(passed, why) against the registry's thresholds."""
    failures = []
    if report.sample_size < limits.min_sample_size:
        failures.append(f"sample size {report.sample_size} < {limits.min_sample_size}")
    if report.agreement < limits.min_agreement:
        failures.append(f"agreement {report.agreement:.4f} < {limits.min_agreement}")
    if report.score_distance > limits.max_score_distance:
        failures.append(f"score distance {report.score_distance:.4f} > {limits.max_score_distance}")
    return (not failures, "; ".join(failures) or "passed")


async def check_gate(conn: asyncpg.Connection, caller: Caller, target: Target) -> None:
    """Champion in a gated environment: an approver who is not the author, and a passing evaluation there."""
    if not target.gated:
        return
    if caller.role not in APPROVERS:
        raise PermissionDeniedError(
            f"making {target.label} champion in {target.environment} needs role approver;"
            f" {caller.name} is {caller.role}"
        )
    if caller.name == target.author:
        raise FailedPrecondition(
            f"{caller.name} registered {target.label}, so cannot approve it for {target.environment}:"
            " another approver must promote it"
        )
    latest = await conn.fetchrow(
        "SELECT e.passed, e.verdict, e.champion_id, c.version AS champion_version"
        " FROM evaluations e LEFT JOIN versions c ON c.id = e.champion_id"
        " WHERE e.candidate_id = $1 AND e.environment = $2"
        " ORDER BY e.recorded_at DESC, e.id DESC LIMIT 1",
        target.version_id,
        target.environment,
    )
    if latest is None:
        raise FailedPrecondition(
            f"{target.label} has no evaluation in {target.environment}:"
            " run it as shadow and record a passing one"
        )
    if not latest["passed"]:
        raise FailedPrecondition(
            f"the latest evaluation of {target.label} in {target.environment} failed: {latest['verdict']}"
        )
    # the evaluation must have measured the candidate against the champion it is about to replace
    champion = await champion_of(conn, target.model_id, target.environment)
    if latest["champion_id"] != champion:
        now = (
            await conn.fetchval("SELECT version FROM versions WHERE id = $1", champion) if champion else None
        )
        then = f"{target.name}@{latest['champion_version']}" if latest["champion_id"] else "no champion"
        current = f"{target.name}@{now}" if now else "no champion"
        raise FailedPrecondition(
            f"the latest evaluation of {target.label} in {target.environment} compared it with {then},"
            f" but the champion there is {current}: evaluate it against the current champion"
        )


class Evaluations:
    """Records evaluations and reads them back."""

    def __init__(self, pool: asyncpg.Pool, limits: EvaluationThresholds) -> None:
        self.pool = pool
        self.limits = limits

    async def record(self, caller: Caller, report: EvaluationReport) -> dict[str, Any]:
        """Store an evaluation with the registry's verdict."""
        report.check()
        passed, why = verdict(report, self.limits)
        with db_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await environment_row(conn, report.environment)
                model_id = await model_id_of(conn, report.name)
                ids: dict[str, int | None] = {}
                for label, version in (
                    ("candidate", report.candidate_version),
                    ("champion", report.champion_version),
                ):
                    if label == "champion" and version == 0:
                        ids[label] = None
                        continue
                    ids[label] = await conn.fetchval(
                        "SELECT id FROM versions WHERE model_id = $1 AND version = $2", model_id, version
                    )
                    if ids[label] is None:
                        raise NotFound(f"{label} version {version} of model {report.name!r} does not exist")
                deployed = await conn.fetchval(
                    "SELECT 1 FROM deployments WHERE version_id = $1 AND environment = $2",
                    ids["candidate"],
                    report.environment,
                )
                if not deployed:
                    raise FailedPrecondition(
                        f"{report.name}@{report.candidate_version} was never deployed to"
                        f" {report.environment},"
                        " so it cannot have been evaluated there"
                    )
                eval_id = await conn.fetchval(
                    """INSERT INTO evaluations (model_id, candidate_id, champion_id, environment, sample_size,
                         agreement, score_distance, candidate_latency_p99_ms, champion_latency_p99_ms, passed,
                         verdict, notes, recorded_by)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id""",
                    model_id,
                    ids["candidate"],
                    ids["champion"],
                    report.environment,
                    report.sample_size,
                    report.agreement,
                    report.score_distance,
                    report.candidate_latency_p99_ms,
                    report.champion_latency_p99_ms,
                    passed,
                    why,
                    report.notes,
                    caller.name,
                )
                await conn.execute(
                    """INSERT INTO events (actor, action, model, version, environment, reason, after)
                       VALUES ($1, 'evaluate', $2, $3, $4, $5, $6)""",
                    caller.name,
                    report.name,
                    report.candidate_version,
                    report.environment,
                    why,
                    {"evaluation": eval_id, "passed": passed, "champion_version": report.champion_version},
                )
                row = await conn.fetchrow(EVALUATION_SELECT + " WHERE e.id = $1", eval_id)
        return dict(row)

    async def list(
        self, name: str, candidate_version: int = 0, environment: str = ""
    ) -> list[dict[str, Any]]:
        """Evaluations of a model, newest first."""
        with db_errors():
            if not await self.pool.fetchval("SELECT 1 FROM models WHERE name = $1", name):
                raise NotFound(f"unknown model {name!r}")
            rows = await self.pool.fetch(
                EVALUATION_SELECT
                + " WHERE m.name = $1 AND ($2 = 0 OR c.version = $2) AND ($3 = '' OR e.environment = $3)"
                " ORDER BY e.recorded_at DESC, e.id DESC",
                name,
                candidate_version,
                environment,
            )
        return [dict(r) for r in rows]
