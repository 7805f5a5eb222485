"""The report's PNG: a latency-by-percentile plot and latency over time, drawn from the JSON alone."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, never need a display

import matplotlib.pyplot as plt
import numpy as np

# The percentile axis is drawn as 1/(1-p), so 90, 99, 99.9 ... are evenly spaced like in HdrHistogram plots.
_TICKS = (0.0, 90.0, 99.0, 99.9, 99.99, 99.999)
_CAP = 99.9999


def _x(percentile: float) -> float:
    return float(1.0 / (1.0 - min(percentile, _CAP) / 100.0))


def write_plot(report: Mapping[str, Any], path: Path) -> Path:
    """Draw every run of `report` into one PNG at `path`."""
    runs = [r for r in report.get("runs", []) if r.get("percentiles_ms")]
    fig, (by_percentile, over_time) = plt.subplots(2, 1, figsize=(10, 9))
    for run in runs:
        curve = np.asarray(run["percentiles_ms"], dtype=np.float64)
        by_percentile.plot([_x(p) for p in curve[:, 0]], curve[:, 1], marker=".", label=_label(run))
        timeline = [b for b in run.get("timeline", []) if "p99" in b]
        if timeline:
            t = [b["t"] for b in timeline]
            (line,) = over_time.plot(t, [b["p99"] for b in timeline], label=f"{run['name']} p99")
            over_time.plot(t, [b["max"] for b in timeline], linestyle=":", color=line.get_color())
    by_percentile.set_xscale("log")
    by_percentile.set_xticks([_x(p) for p in _TICKS], [f"{p:g}%" for p in _TICKS])
    by_percentile.minorticks_off()
    by_percentile.set_xlabel("percentile")
    by_percentile.set_ylabel("latency (ms)")
    by_percentile.set_title("Latency by percentile")
    over_time.set_xlabel("seconds since the end of warm-up (send time)")
    over_time.set_ylabel("latency (ms)")
    over_time.set_title("Latency over time (solid: p99, dotted: max)")
    for axes in (by_percentile, over_time):
        # Log latency: a 2 ms median and a 2 s overload stay readable on one axis.
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
        if runs:
            axes.legend(fontsize="small")
    machine = report.get("machine", {})
    title = f"rtscore bench: {machine.get('cores', '?')} cores, {machine.get('cpu', '')}"
    limit = machine.get("cpu_idle", {}).get("latency_limit_us")
    if limit is not None:
        title += f", idle CPUs held to {limit} us wake-ups"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _label(run: Mapping[str, Any]) -> str:
    rate = run.get("rate")
    return f"{run['name']} @ {rate:g}/s" if rate else f"{run['name']} (closed)"
