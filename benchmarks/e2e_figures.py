"""`rtscore bench e2e`'s figures: the talk's table, `e2e` over both floors (whole runs and round by
round), and the lines printed under the table."""

from __future__ import annotations

from typing import Any

from benchmarks.e2e_rate import P99_LIMIT_MS
from benchmarks.report import render_table
from benchmarks.rounds import ratios_by_round, said_by_round

# The talk's own end-to-end figures with MLeap (ms): the row printed beside ours.
TALK = {"name": "talk (MLeap)", "avg": 7.00, "p95": 9.0, "p99": 16.0, "stddev": 2.41}


def summarize(runs: list[dict[str, Any]], speeds: list[float], highest: dict[str, Any]) -> dict[str, Any]:
    """Print the talk's table and what to read beside it; the report's ratios, by key."""
    print(talk_table(runs))
    over_floor = floor_ratios(runs)
    over_native = floor_ratios(runs, "e2e-floor-native")
    rounds_of = {run["name"]: run.get("rounds_ms") or [] for run in runs}
    by_round = {base: ratios_by_round(rounds_of["e2e"], rounds_of.get(base, []))
                for base in ("e2e-floor", "e2e-floor-native")}  # fmt: skip
    print(f"machine speed (a million Python additions, ms) at each round: {', '.join(map(str, speeds))}")
    for base, ratios in by_round.items():
        if ratios is not None:
            print(f"e2e over {base} round by round, p50 / p99 (median, range): {said_by_round(ratios)}")
    for label, ratios in (
        ("e2e-floor (the same hops with no work)", over_floor),
        ("e2e-floor-native (the same hops from a native server)", over_native),
    ):
        if any(ratio is not None for ratio in ratios.values()):
            print(f"e2e over {label}: " + ", ".join(
                f"{statistic} {ratio:.2f}x" for statistic, ratio in ratios.items() if ratio is not None
            ))  # fmt: skip
    for run in runs:
        if run.get("counts") is not None:
            print(f"{run['name']} counted (warm-up included): {said(run['counts'])}")
    held = f"{highest['rate']:g}/s" if highest["rate"] else "none tried held"
    print(f"highest e2e rate with p99 <= {P99_LIMIT_MS:g} ms: {held}")
    return {
        "e2e_over_floor": over_floor,
        "e2e_over_native_floor": over_native,
        "e2e_over_floor_by_round": by_round["e2e-floor"],
        "e2e_over_native_floor_by_round": by_round["e2e-floor-native"],
    }


def floor_ratios(runs: list[dict[str, Any]], floor_run: str = "e2e-floor") -> dict[str, float | None]:
    """The `e2e` run's avg, p50, p95, p99 and stddev over the `floor_run` run's (None where absent)."""
    by_name = {run["name"]: run.get("latency_ms") or {} for run in runs}
    ours, floor = by_name.get("e2e", {}), by_name.get(floor_run, {})
    ratios: dict[str, float | None] = {}
    for statistic in ("avg", "p50", "p95", "p99", "stddev"):
        mine, base = ours.get(statistic), floor.get(statistic)
        ratios[statistic] = round(mine / base, 3) if mine and base else None
    return ratios


def talk_table(runs: list[dict[str, Any]]) -> str:
    """avg / p95 / p99 / stddev per run, with the talk's MLeap figures as the first row."""
    rows: list[list[Any]] = [[TALK["name"], TALK["avg"], TALK["p95"], TALK["p99"], TALK["stddev"]]]
    for run in runs:
        latency = run.get("latency_ms") or {}
        rows.append(
            [run["name"], latency.get("avg"), latency.get("p95"), latency.get("p99"), latency.get("stddev")]
        )
    return render_table(["run", "avg ms", "p95 ms", "p99 ms", "stddev ms"], rows)


def cpu_said(per_call: dict[str, float]) -> str:
    """CPU per call by tier as `tier ms, …`."""
    return ", ".join(f"{tier} {ms:.3f}" for tier, ms in per_call.items())


def said(counts: dict[str, int]) -> str:
    """`counts` as `name n, …`, zeros included: a run that fell back nowhere says so."""
    return ", ".join(f"{name} {n}" for name, n in counts.items())
