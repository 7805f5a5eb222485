"""A candidate against the champion on the same shadow transactions, recorded where the promotion gate reads.

The champion's score and decision come from each record (what the live model said); the candidate's from
its stored rows. PSI bins by the champion's deciles; 0.1 and 0.25 are the usual "small" and "large" bands,
and PSI is what the registry receives as the distance between the score distributions.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
from scipy import stats

from rtscore.errors import FailedPrecondition, InvalidArgument

PSI_BANDS = (0.1, 0.25)
_EPS = 1e-6

ROWS = """
SELECT s.score, s.threshold, s.champion_score, s.champion_version, s.latency_ms, s.champion_latency_ms,
       s.scored_at, l.fraud
FROM shadow_scores s LEFT JOIN shadow_labels l USING (transaction_id)
WHERE s.model = $1 AND s.version = $2 AND s.environment = $3 AND s.champion_model = $1
  AND ($4::timestamptz IS NULL OR s.scored_at >= $4)
"""


@dataclass
class Comparison:
    """Candidate vs champion figures over one set of transactions."""

    count: int
    champion_version: int
    agreement: float
    mean_abs_difference: float
    psi: float
    psi_band: str
    ks_statistic: float
    ks_pvalue: float
    candidate_latency_p50_ms: float
    candidate_latency_p99_ms: float
    champion_latency_p50_ms: float
    champion_latency_p99_ms: float
    labelled: int
    candidate_auc: float | None
    champion_auc: float | None
    labelled_fraud: int = 0
    candidate_recall: float | None = None
    """Share of the labelled fraud the candidate scores at or above the threshold."""
    champion_recall: float | None = None
    candidate_precision: float | None = None
    """Share of the candidate's labelled transactions at or above the threshold that are fraud."""
    champion_precision: float | None = None


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of actual against expected, over expected's quantile bins."""
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:  # expected is one value: bins either side of it
        edges = np.array([expected[0] - _EPS, expected[0] + _EPS])
    inner = edges[1:-1]
    e = np.bincount(np.searchsorted(inner, expected, side="right"), minlength=edges.size - 1) / expected.size
    a = np.bincount(np.searchsorted(inner, actual, side="right"), minlength=edges.size - 1) / actual.size
    e = np.clip(e, _EPS, None)
    a = np.clip(a, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float) -> str:
    """`stable`, `moderate shift` or `large shift` by the usual 0.1 / 0.25 bands."""
    low, high = PSI_BANDS
    return "stable" if value < low else "moderate shift" if value < high else "large shift"


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if labels.size == 0 or labels.min() == labels.max():
        return None
    ranks = stats.rankdata(scores)
    positives = labels.sum()
    negatives = labels.size - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _caught(labels: np.ndarray, flagged: np.ndarray) -> tuple[float | None, float | None]:
    """Recall and precision of `flagged` against `labels`; None where nothing to divide by."""
    hits = int(np.sum(labels & flagged))
    recall = hits / int(labels.sum()) if labels.any() else None
    precision = hits / int(flagged.sum()) if flagged.any() else None
    return recall, precision


def compare(rows: list[asyncpg.Record], threshold: float | None = None) -> Comparison:
    """The figures for rows of one candidate; the champion is the latest version the rows name."""
    if not rows:
        raise FailedPrecondition(
            "no shadow rows to evaluate: has the candidate run as shadow on this traffic?"
        )
    latest = max(rows, key=lambda r: r["scored_at"])["champion_version"]
    rows = [r for r in rows if r["champion_version"] == latest]
    cand = np.array([r["score"] for r in rows], dtype=np.float64)
    champ = np.array([r["champion_score"] for r in rows], dtype=np.float64)
    cut = np.full(cand.size, threshold) if threshold is not None else np.array([r["threshold"] for r in rows])
    latency = np.array([r["latency_ms"] for r in rows])
    champ_latency = np.array([r["champion_latency_ms"] for r in rows])
    known = [i for i, r in enumerate(rows) if r["fraud"] is not None]
    labels = np.array([rows[i]["fraud"] for i in known], dtype=bool)
    ks = stats.ks_2samp(cand, champ)
    value = psi(champ, cand)
    cand_recall, cand_precision = _caught(labels, cand[known] >= cut[known])
    champ_recall, champ_precision = _caught(labels, champ[known] >= cut[known])
    return Comparison(
        count=int(cand.size),
        champion_version=int(latest) if str(latest).isdigit() else 0,
        agreement=float(np.mean((cand >= cut) == (champ >= cut))),
        mean_abs_difference=float(np.mean(np.abs(cand - champ))),
        psi=value,
        psi_band=psi_band(value),
        ks_statistic=float(ks.statistic),
        ks_pvalue=float(ks.pvalue),
        candidate_latency_p50_ms=float(np.percentile(latency, 50)),
        candidate_latency_p99_ms=float(np.percentile(latency, 99)),
        champion_latency_p50_ms=float(np.percentile(champ_latency, 50)),
        champion_latency_p99_ms=float(np.percentile(champ_latency, 99)),
        labelled=len(known),
        candidate_auc=_auc(labels, cand[known]) if known else None,
        champion_auc=_auc(labels, champ[known]) if known else None,
        labelled_fraud=int(labels.sum()),
        candidate_recall=cand_recall,
        champion_recall=champ_recall,
        candidate_precision=cand_precision,
        champion_precision=champ_precision,
    )


async def candidate_rows(
    dsn: str, name: str, version: int, environment: str, since: datetime | None
) -> list[asyncpg.Record]:
    """The candidate's stored rows in environment (since a time, if given)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(ROWS, name, version, environment, since)
    finally:
        await conn.close()
    return rows


def record(name: str, version: int, environment: str, result: Comparison, registry: str | None) -> Any:
    """RecordEvaluation in the registry; returns the evaluation it stored, with its verdict."""
    from protos.rtscore.v1 import registry_pb2 as pb
    from registry.cli import message_json
    from registry.client import RegistryClient

    request = pb.EvaluationRequest(
        name=name,
        candidate_version=version,
        champion_version=result.champion_version,
        environment=environment,
        sample_size=result.count,
        agreement=result.agreement,
        score_distance=result.psi,
        candidate_latency_p99_ms=result.candidate_latency_p99_ms,
        champion_latency_p99_ms=result.champion_latency_p99_ms,
        notes=json.dumps(asdict(result)),
    )
    with RegistryClient(registry) as client:
        return message_json(client.call("RecordEvaluation", request))


async def evaluate_and_record(
    dsn: str,
    name: str,
    version: int,
    environment: str,
    *,
    since: str | None = None,
    threshold: float | None = None,
    record_it: bool = True,
    registry: str | None = None,
) -> dict[str, Any]:
    """Compute the comparison and (unless told not to) record it; the registry gives the verdict."""
    try:
        start = datetime.fromisoformat(since) if since else None
    except ValueError as err:
        raise InvalidArgument(f"--since must be an ISO time, got {since!r}") from err
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)  # a time without a zone is read as UTC
    rows = await candidate_rows(dsn, name, version, environment, start)
    result = compare(rows, threshold)
    out: dict[str, Any] = {"candidate": f"{name}@{version}", "environment": environment, **asdict(result)}
    out["since"] = start.isoformat() if start is not None else None
    out["recorded"] = (
        await asyncio.to_thread(record, name, version, environment, result, registry) if record_it else None
    )
    return out
