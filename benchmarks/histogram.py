"""Latency recording: an HdrHistogram per run plus a per-request timeline for the over-time plot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

# Microsecond resolution from 1 us to one hour with 3 significant digits: 0.1% error at any latency.
_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_DIGITS = 3

# Percentiles drawn in the plot and kept in the JSON so it can be redrawn without the raw data.
CURVE_PERCENTILES = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0)


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds."""
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


@dataclass(frozen=True)
class LatencySummary:
    """The report's `latency_ms` block."""

    avg: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float
    stddev: float

    def as_dict(self) -> dict[str, float]:
        """The JSON form, rounded to microseconds."""
        return {k: round(v, 3) for k, v in self.__dict__.items()}


@dataclass
class LatencyRecorder:
    """Successful-call latencies (histogram + timeline) and failed calls by status code."""

    histogram: HdrHistogram = field(default_factory=new_histogram)
    errors: Counter[str] = field(default_factory=Counter)
    # (seconds since the measurement start of the intended send, latency in seconds, ok)
    sent_at: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    # Per call, the part of its latency spent waiting to leave the client (the native client only;
    # empty where a client does not say): latency minus this is the call timed from its send.
    waited: list[float] = field(default_factory=list)

    def record(self, sent_at: float, latency_s: float) -> None:
        """Record one successful call."""
        self.histogram.record_value(min(max(round(latency_s * 1e6), _LOWEST_US), _HIGHEST_US))
        self._timeline(sent_at, latency_s, True)

    def record_error(self, sent_at: float, latency_s: float, code: str) -> None:
        """Record one failed call: counted by status, kept out of the latency distribution."""
        self.errors[code] += 1
        self._timeline(sent_at, latency_s, False)

    def _timeline(self, sent_at: float, latency_s: float, ok: bool) -> None:
        self.sent_at.append(sent_at)
        self.latency.append(latency_s)
        self.ok.append(ok)

    @property
    def requests(self) -> int:
        """Calls recorded, successful or not."""
        return len(self.ok)

    def merge(self, other: LatencyRecorder, offset_s: float = 0.0) -> None:
        """Add another recorder's calls; its timeline is shifted by `offset_s`."""
        self.histogram.add(other.histogram)
        self.errors.update(other.errors)
        self.sent_at.extend(t + offset_s for t in other.sent_at)
        self.latency.extend(other.latency)
        self.ok.extend(other.ok)
        self.waited.extend(other.waited)

    def to_wire(self) -> dict[str, Any]:
        """A picklable, compact form for sending a recorder between processes."""
        return {
            "histogram": self.histogram.encode(),
            "errors": dict(self.errors),
            "timeline": np.array([self.sent_at, self.latency, self.ok], dtype=np.float64),
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> LatencyRecorder:
        """Rebuild a recorder sent by `to_wire`."""
        recorder = cls()
        recorder.histogram.decode_and_add(wire["histogram"])
        recorder.errors.update(wire["errors"])
        timeline = wire["timeline"]
        recorder.sent_at = timeline[0].tolist()
        recorder.latency = timeline[1].tolist()
        recorder.ok = [bool(v) for v in timeline[2]]
        return recorder

    def summary(self) -> LatencySummary | None:
        """Latency statistics in milliseconds, or None when no call succeeded."""
        h = self.histogram
        if h.get_total_count() == 0:
            return None
        at = h.get_percentile_to_value_dict([50.0, 90.0, 95.0, 99.0, 99.9])
        return LatencySummary(
            avg=h.get_mean_value() / 1e3,
            p50=at[50.0] / 1e3,
            p90=at[90.0] / 1e3,
            p95=at[95.0] / 1e3,
            p99=at[99.0] / 1e3,
            p999=at[99.9] / 1e3,
            max=h.get_max_value() / 1e3,
            stddev=h.get_stddev() / 1e3,
        )

    def percentile_curve(self) -> list[list[float]]:
        """[[percentile, latency ms], ...] at `CURVE_PERCENTILES`; empty when no call succeeded."""
        if self.histogram.get_total_count() == 0:
            return []
        at = self.histogram.get_percentile_to_value_dict(list(CURVE_PERCENTILES))
        return [[p, round(at[p] / 1e3, 3)] for p in CURVE_PERCENTILES]

    def timeline_buckets(self, buckets: int = 60) -> list[dict[str, float]]:
        """Latency over time: per time bucket the count, errors, p50, p99 and max (ms) of calls sent in it."""
        if not self.sent_at:
            return []
        t = np.asarray(self.sent_at)
        lat = np.asarray(self.latency) * 1e3
        ok = np.asarray(self.ok, dtype=bool)
        span = max(float(t.max()), 1e-3)
        width = max(span / buckets, 0.05)
        index = np.minimum((t // width).astype(np.int64), int(span // width))
        out = []
        for b in np.unique(index):
            sel = index == b
            good = lat[sel & ok]
            row = {"t": round(float(b) * width, 3), "count": int(sel.sum()), "errors": int((sel & ~ok).sum())}
            if good.size:
                p50, p99 = np.percentile(good, [50, 99])
                row.update(
                    p50=round(float(p50), 3), p99=round(float(p99), 3), max=round(float(good.max()), 3)
                )
            out.append(row)
        return out
