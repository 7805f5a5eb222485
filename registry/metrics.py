"""Prometheus metrics of the registry: calls by method and status, and their latency."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CALLS = Counter(
    "rtscore_registry_calls", "Registry calls finished, by method and gRPC status", ["method", "code"]
)
LATENCY = Histogram(
    "rtscore_registry_call_seconds",
    "Time to answer a unary registry call",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
)


def observe(method: str, code: str, seconds: float | None = None) -> None:
    """Count one finished call (and its latency, for unary calls)."""
    CALLS.labels(method, code).inc()
    if seconds is not None:
        LATENCY.labels(method).observe(seconds)
