"""What the demo prints and writes: the latency table beside the reference figures, the evaluation, the
model's history, the promotion's failed calls, a PNG, and the JSON whose keys are a contract."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.e2e_figures import TALK
from benchmarks.loadgen import RunResult

# The figures published for the same flow served with MLeap (milliseconds), as `rtscore bench e2e` has them.
REFERENCE_MS = {key: float(str(TALK[key])) for key in ("avg", "p95", "p99", "stddev")}


def latency_ms(result: RunResult) -> dict[str, Any]:
    """avg / p50 / p95 / p99 / p99.9 / max / stddev of the successful calls, plus counts and the client."""
    summary = result.recorder.summary()
    figures: dict[str, Any] = summary.as_dict() if summary is not None else {}
    failed = sum(result.recorder.errors.values())
    figures.update(
        calls=result.recorder.requests,
        failed=failed,
        errors=dict(result.recorder.errors),
        offered_rate=result.spec.rate,
        achieved_rate=round(result.achieved_rate, 1),
        client=result.client,
        late_sends=result.late_sends,
        timeline=result.recorder.timeline_buckets(60),
    )
    return figures


def failed_between(result: RunResult, start_s: float, end_s: float) -> int:
    """Failed calls whose intended send fell within [start_s, end_s) of the run."""
    sent = np.asarray(result.recorder.sent_at)
    ok = np.asarray(result.recorder.ok, dtype=bool)
    if sent.size == 0:
        return 0
    return int(np.count_nonzero(~ok & (sent >= start_s) & (sent < end_s)))


def latency_table(figures: dict[str, Any]) -> Table:
    """The talk's four figures for this run beside the reference ones."""
    table = Table(title="latency, transaction in to decision out (ms)")
    table.add_column("")
    for key in ("avg", "p95", "p99", "stddev"):
        table.add_column(key, justify="right")
    table.add_row("rtscore (this run)", *(f"{figures.get(k, float('nan')):.2f}" for k in REFERENCE_MS))
    table.add_row("with MLeap (reference)", *(f"{v:.2f}" for v in REFERENCE_MS.values()))
    return table


# The two latencies time different things, so the table says which: read them apart, not as a ratio.
_LATENCY_LABELS = {
    "candidate_latency_p99_ms": "candidate_latency_p99_ms (shadow worker, per row of a batch)",
    "champion_latency_p99_ms": "champion_latency_p99_ms (live scorer call, network included)",
}


def evaluation_table(evaluation: dict[str, Any]) -> Table:
    """The shadow evaluation's figures and the registry's verdict."""
    table = Table(title=f"shadow evaluation of {evaluation.get('candidate', '?')}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    keys = ("since", "count", "champion_version", "agreement", "mean_abs_difference", "psi", "psi_band",
            "ks_statistic", "labelled", "labelled_fraud", "candidate_auc", "champion_auc", "candidate_recall",
            "champion_recall", "candidate_precision", "champion_precision", "candidate_latency_p99_ms",
            "champion_latency_p99_ms")  # fmt: skip
    for key in keys:
        if evaluation.get(key) is not None:
            value = evaluation[key]
            label = _LATENCY_LABELS.get(key, key)
            table.add_row(label, f"{value:.4f}" if isinstance(value, float) else str(value))
    recorded = evaluation.get("recorded") or {}
    table.add_row("verdict (registry)", str(recorded.get("verdict", "not recorded")))
    return table


def history_table(events: Sequence[dict[str, Any]]) -> Table:
    """The model's audit log."""
    table = Table(title="history of fraud (registry audit log)")
    for column in ("at", "actor", "action", "version", "environment", "reason"):
        table.add_column(column)
    for e in events:
        table.add_row(str(e["at"])[11:23], e["actor"], e["action"], str(e["version"]), e["environment"],
                      e["reason"])  # fmt: skip
    return table


def print_report(console: Console, report: dict[str, Any]) -> None:
    """Everything a person reads at the end of the run."""
    console.print(latency_table(report["latency_ms"]))
    lat = report["latency_ms"]
    console.print(
        f"{lat['calls']} calls at {lat['achieved_rate']}/s offered {lat['offered_rate']}/s"
        f" ({lat['client']} load client), p50 {lat.get('p50', float('nan')):.2f} ms,"
        f" p99.9 {lat.get('p999', float('nan')):.2f} ms, max {lat.get('max', float('nan')):.2f} ms"
    )
    if report["evaluation"]:
        console.print(evaluation_table(report["evaluation"]))
    console.print(history_table(report["events"]))
    for p in report["promotions"]:
        served = p.get("served_after_s")
        seen = (
            f"answered by v{p['to_version']} after {served:.2f} s"
            if served is not None
            else "not seen answering"
        )
        console.print(
            f"promotion fraud@{p['from_version']} -> fraud@{p['to_version']} at {p['at_s']:.1f} s: {seen};"
            f" {p['failed_calls_around']} failed calls from 1 s before it to 5 s after"
        )
    counts = report.get("extractor_counts")
    if counts is not None:
        console.print(
            "the extractor counted over the run: " + ", ".join(f"{k} {n}" for k, n in counts.items())
        )
    elif report.get("extractor_counts_error"):
        console.print(f"the extractor's counts were not read: {report['extractor_counts_error']}")
    errors = ", ".join(f"{code} {n}" for code, n in lat["errors"].items()) or "none"
    console.print(
        f"failed calls over the whole run: {report['failed_calls']}"
        f" (load: {errors}; probe, {report['probe']['calls']} calls: {report['probe']['errors'] or 'none'})"
    )


def write_png(
    path: Path, result: RunResult, promotions: Sequence[dict[str, Any]], scores: dict[str, list[float]]
) -> Path:
    """Latency over time with the promotion marked, and the score distributions of v1 and v2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over_time, distributions) = plt.subplots(2, 1, figsize=(10, 8))
    buckets = [b for b in result.recorder.timeline_buckets(120) if "p99" in b]
    if buckets:
        t = [b["t"] for b in buckets]
        over_time.plot(t, [b["p50"] for b in buckets], label="p50")
        over_time.plot(t, [b["p99"] for b in buckets], label="p99")
        over_time.plot(t, [b["max"] for b in buckets], linestyle=":", label="max")
    sent = np.asarray(result.recorder.sent_at)
    failed = ~np.asarray(result.recorder.ok, dtype=bool)
    if failed.any():
        ceiling = max((b["max"] for b in buckets), default=1.0)
        over_time.scatter(sent[failed], np.full(int(failed.sum()), ceiling), marker="x", color="black",
                          label=f"failed calls ({int(failed.sum())})")  # fmt: skip
    for p in promotions:
        over_time.axvline(p["at_s"], color="red", linestyle="--")
        over_time.text(p["at_s"], 0.95, f" promote v{p['to_version']}", color="red", va="top",
                       transform=over_time.get_xaxis_transform())  # fmt: skip
    over_time.set_xlabel("seconds since the traffic began")
    over_time.set_ylabel("latency (ms)")
    over_time.set_yscale("log")
    over_time.legend()
    over_time.set_title("extractor Evaluate latency over time (open loop, from intended send)")
    bins = np.linspace(0.0, 1.0, 41)
    for label, values in scores.items():
        if values:
            distributions.hist(values, bins=bins, alpha=0.55, label=f"{label} ({len(values)} transactions)")
    distributions.set_yscale("log")
    distributions.set_xlabel("fraud score")
    distributions.set_ylabel("transactions")
    distributions.set_title("scores of the same shadow transactions: champion v1 (live) and candidate v2")
    distributions.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(path: Path, report: dict[str, Any]) -> None:
    """The report as JSON (keys latency_ms, evaluation, promotions, failed_calls, events, and more)."""
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
