"""The headline of a comparison: rtscore's latency over the transport floor's and over MLeap served's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.report import render_table

# What rtscore is divided by: the bare Python gRPC server, and MLeap's runtime behind grpc-java.
REFERENCES = ("floor", "mleap-served")
STATISTICS = ("avg", "p50", "p99")


def _split(name: str) -> tuple[str, str]:
    """`rtscore-2@500` -> ("rtscore-2", "500"); a run at the common rate has an empty suffix."""
    base, _, rate = name.partition("@")
    return base, rate


def headline_ratios(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """rtscore / floor and rtscore / mleap-served for every rate both were measured at, by statistic."""
    by_name = {run["name"]: run for run in runs}
    ratios = []
    for run in runs:
        base, rate = _split(run["name"])
        if not base.startswith("rtscore-") or base.count("-") != 1 or not run.get("latency_ms"):
            continue  # sweep steps (rtscore-2-p99-over-10ms@…) have no reference at their rate
        for reference in REFERENCES:
            other = by_name.get(f"{reference}@{rate}" if rate else reference)
            if other is None or not other.get("latency_ms"):
                continue
            ours, theirs = run["latency_ms"], other["latency_ms"]
            entry: dict[str, Any] = {"run": run["name"], "over": other["name"], "rate": run.get("rate")}
            for statistic in STATISTICS:
                mine, base_value = ours.get(statistic), theirs.get(statistic)
                entry[statistic] = round(mine / base_value, 3) if mine and base_value else None
            ratios.append(entry)
    return ratios


def headline_table(ratios: Sequence[Mapping[str, Any]]) -> str:
    """The ratios as a table people read: below 1.00x rtscore is faster."""
    header = ["rtscore run", "over", "rate/s", *(f"{s} ratio" for s in STATISTICS)]
    rows = [
        [r["run"], r["over"], r["rate"], *(None if r[s] is None else f"{r[s]:.2f}x" for s in STATISTICS)]
        for r in ratios
    ]
    return render_table(header, rows)
