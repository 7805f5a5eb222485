"""`rtscore bench scorer`'s figures: each scorer run read against the floor of as many processes at its
rate (and one worker against the kernel floor), the highest rate each held, and the tables it prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks import report
from benchmarks.rounds import ratios_by_round, said_by_round

# The latency bound under which a rate counts as held.
HELD_P99_MS = 10.0


def floor_ratios(runs: Sequence[dict[str, Any]], transform_avg_ms: float = 0.0) -> list[dict[str, Any]]:
    """Each scorer run over the floor run of as many processes at its rate: p50 and p99 ratios, the
    server CPU per call the scorer spends beyond the floor's, and what is left of it beyond the
    in-process transform (`transform_avg_ms`): the service's own cost per call. Where the run has a
    kernel floor at its rate, `kernel_floor` reads it against that too: the same ratios and extra CPU,
    beyond the model's kernel as served (cold, at that rate) rather than as timed in a hot loop."""
    by_name = {r["name"]: r for r in runs}
    out: list[dict[str, Any]] = []
    for run in runs:
        base, _, rate = run["name"].partition("@")
        if not base.startswith("rtscore-"):
            continue
        workers = base.removeprefix("rtscore-")
        floor = by_name.get(f"{'floor' if workers == '1' else 'floor-' + workers}@{rate}")
        if floor is None or not run["latency_ms"] or not floor["latency_ms"]:
            continue
        over = _over(run, floor)
        kernel = by_name.get(f"kernel-floor{'' if workers == '1' else '-' + workers}@{rate}")
        out.append({
            "run": run["name"],
            "over": floor["name"],
            "rate": run["rate"],
            **over,
            "beyond_transform_ms_per_call": round(over["extra_cpu_ms_per_call"] - transform_avg_ms, 3),
            "kernel_floor": _over(run, kernel) if kernel is not None and kernel["latency_ms"] else None,
        })  # fmt: skip
    return out


def _over(run: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """`run`'s p50 and p99 over `base`'s, and its server CPU per call beyond `base`'s; with rounds,
    the same ratios round by round (`by_round`, each round against the same round of `base`)."""
    ours, theirs = run["latency_ms"], base["latency_ms"]
    extra_cpu = run["server_cpu_ms"]["total"] - base["server_cpu_ms"]["total"]
    return {
        "p50": round(ours["p50"] / theirs["p50"], 3),
        "p99": round(ours["p99"] / theirs["p99"], 3),
        "extra_cpu_ms_per_call": round(extra_cpu, 3),
        "by_round": ratios_by_round(run.get("rounds_ms") or [], base.get("rounds_ms") or []),
    }


def highest_held_rates(runs: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Per server (`floor-2`, `rtscore-2`, ...), the highest rate run with p99 <= 10 ms and no errors."""
    held: dict[str, float | None] = {}
    for run in runs:
        base = run["name"].partition("@")[0]
        held.setdefault(base, None)
        lat = run["latency_ms"]
        if lat and lat["p99"] <= HELD_P99_MS and not run["errors"]:
            held[base] = max(held[base] or 0.0, run["rate"])
    return held


def floor_table(ratios: Sequence[dict[str, Any]]) -> str:
    """The scorer over the floor, one row per shared rate."""
    header = [
        "scorer run",
        "over",
        "rate/s",
        "p50 ratio",
        "p99 ratio",
        "extra cpu ms/call",
        "beyond transform",
        "over kernel-floor p50/p99",
        "beyond served kernel",
        "by round p50 / p99 (median, range)",
    ]
    rows = []
    for r in ratios:
        kernel = r.get("kernel_floor")
        rows.append([r["run"], r["over"], r["rate"], f"{r['p50']:.2f}x", f"{r['p99']:.2f}x",
                     r["extra_cpu_ms_per_call"], r["beyond_transform_ms_per_call"],
                     f"{kernel['p50']:.2f}x / {kernel['p99']:.2f}x" if kernel else "-",
                     kernel["extra_cpu_ms_per_call"] if kernel else "-",
                     said_by_round(r.get("by_round"))])  # fmt: skip
    return report.render_table(header, rows)


def table(runs: Sequence[dict[str, Any]]) -> str:
    """Latency and server CPU per call, one row per run."""
    header = ["run", "rate/s", "achieved/s", "errors", "p50 ms", "p99 ms", "max ms", "cpu ms/call",
              "loop", "scoring", "grpc", "client", "client cpu ms/call"]  # fmt: skip
    rows = []
    for r in runs:
        lat, cpu, client = r["latency_ms"] or {}, r["server_cpu_ms"], r["client"]
        flag = "short" if client["short"] else "late" if client["late"] else "ok"
        rows.append([r["name"], r["rate"], r["achieved_rate"], sum(r["errors"].values()), lat.get("p50"),
                     lat.get("p99"), lat.get("max"), cpu["total"], cpu.get("event_loop"), cpu.get("scoring"),
                     cpu.get("grpc"), f"{client['processes']}p {flag}", report.client_cpu(r)])  # fmt: skip
    return report.render_table(header, rows)


def memory_lines(memory: dict[str, Any]) -> str:
    """The memory facts as sentences."""
    lines = []
    for name in ("rtscore-1", "rtscore-2"):
        m = memory.get(name)
        if m:
            lines.append(
                f"{name}: serving processes PSS {m['workers_pss_mb']:.0f} MB (RSS {m['workers_rss_mb']:.0f}, "
                f"USS {m['workers_uss_mb']:.0f}); whole tree PSS {m['tree_pss_mb']:.0f} MB"
            )
    if "workers_ratio" in memory:
        lines.append(
            f"two workers / one: {memory['workers_ratio']:.2f}x (serving processes), "
            f"{memory['tree_ratio']:.2f}x (with the supervisor)"
        )
    return "\n".join(lines)
