"""The benchmark report: the JSON other tools read, and the tables people read."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from benchmarks.loadgen import RunResult
from rtscore.cpu_latency import current_limit_us, idle_driver

REPORT_VERSION = 1
_PACKAGES = ("rtscore", "grpcio", "protobuf", "numpy", "numba", "scikit-learn", "mleap", "hdrhistogram")
_TABLE_COLUMNS = ("avg", "p50", "p90", "p95", "p99", "p999", "max", "stddev")


def machine_info() -> dict[str, Any]:
    """Cores, CPU, memory and the versions that shape the numbers."""
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        # Other work on the machine shifts every number; the load average says how much there was.
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python_loop_ms": python_loop_ms(),
        # Whether idle CPUs sleep or poll changes every wake-up (--cpu-latency-us holds them polling).
        "cpu_idle": {"driver": idle_driver(), "latency_limit_us": current_limit_us()},
        "versions": versions,
    }


def python_loop_ms(iterations: int = 1_000_000) -> float:
    """The best of three timings of a plain Python loop of `iterations` additions, in ms.

    The same VM runs every figure 1.5-2x slower in some hours than in others, the floor's included; the
    ratios measured side by side in one run hold, but two recordings are comparable only with how fast
    the machine was at each: this is that speed, taken when the report is written.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(iterations):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1e3, 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_record(name: str, result: RunResult, **extra: Any) -> dict[str, Any]:
    """One entry of the report's `runs`: the contract's keys, then diagnostics that extend it."""
    spec, recorder = result.spec, result.recorder
    summary = recorder.summary()
    record: dict[str, Any] = {
        "name": name,
        "target": spec.target,
        "mode": spec.mode,
        "rate": result.offered_rate,
        "achieved_rate": round(result.achieved_rate, 2),
        "requests": recorder.requests,
        "errors": dict(sorted(recorder.errors.items())),
        "latency_ms": summary.as_dict() if summary else None,
        "arrivals": spec.arrivals if spec.mode == "open" else None,
        "concurrency": spec.concurrency if spec.mode == "closed" else None,
        "duration_s": round(result.window_s, 3),
        "warmup_s": spec.warmup,
        "client": {
            "processes": result.processes,
            "channels": spec.channels,
            "send_lag_ms": result.send_lag_ms,
            "short": result.short,
            "late": result.late,
            "kind": result.client,
            "late_sends": result.late_sends,
            "cpu": result.client_cpu,
        },
        "percentiles_ms": recorder.percentile_curve(),
        "timeline": recorder.timeline_buckets(),
    }
    record.update(extra)
    return record


def build_report(
    runs: Sequence[Mapping[str, Any]], fixture: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """The whole report: machine, fixture, runs, and any extra top-level keys."""
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "machine": machine_info(),
        "fixture": dict(fixture or {}),
        "runs": list(runs),
    }
    report.update(extra)
    return report


def write_report(report: Mapping[str, Any], path: Path) -> Path:
    """Write the JSON to `path` and the PNG beside it; returns the PNG's path."""
    from benchmarks.plot import write_plot

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return write_plot(report, path.with_suffix(".png"))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _errors(run: Mapping[str, Any]) -> int:
    return sum(run.get("errors", {}).values())


def run_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """Every statistic of every run, latency in milliseconds."""
    header = ["run", "rate/s", "achieved/s", "requests", "errors", *(f"{c} ms" for c in _TABLE_COLUMNS)]
    header.append("client cpu ms/call")
    rows = []
    for run in runs:
        latency = run.get("latency_ms") or {}
        row = [run["name"], run["rate"], run["achieved_rate"], run["requests"], _errors(run)]
        rows.append([*row, *(latency.get(c) for c in _TABLE_COLUMNS), client_cpu(run)])
    return render_table(header, rows)


def client_cpu(run: Mapping[str, Any]) -> str | None:
    """The load client's own CPU per call and which client it was, e.g. '0.132 go'."""
    client = run.get("client") or {}
    cpu = client.get("cpu") or {}
    if "ms_per_call" not in cpu:
        return None
    return f"{cpu['ms_per_call']:.3f} {client.get('kind', '')}".strip()


def compare_table(runs: Sequence[Mapping[str, Any]], baseline: str = "before") -> str:
    """The talk's table: avg, p95, p99, stddev per run, with each one's ratio to `baseline`."""
    base = next((r.get("latency_ms") for r in runs if r["name"].startswith(baseline)), None)
    columns = ("avg", "p95", "p99", "stddev")
    header = ["run", "rate/s", *(f"{c} ms" for c in columns), "errors"]
    if base:
        header += [f"{c} vs {baseline}" for c in columns]
    rows = []
    for run in runs:
        latency = run.get("latency_ms") or {}
        row = [run["name"], run["rate"], *(latency.get(c) for c in columns), _errors(run)]
        if base:
            row += [_ratio(latency.get(c), base.get(c)) for c in columns]
        rows.append(row)
    return render_table(header, rows)


def _ratio(value: float | None, base: float | None) -> str | None:
    if value is None or not base:
        return None
    return f"{value / base:.2f}x"
