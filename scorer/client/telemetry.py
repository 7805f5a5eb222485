"""What the pool did: OpenTelemetry instruments, plus plain counts a benchmark report reads."""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry import metrics

# Seconds; fine below 2 ms where the scorers answer, coarse above.
LATENCY_BUCKETS = (0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)  # fmt: skip


class PoolTelemetry:
    """Picks per endpoint, retries, hedges and hedge wins, ejections, batch sizes, latency per endpoint."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("rtscore.scorer.client")
        self._picks = meter.create_counter("rtscore_pool_picks", description="calls sent, by endpoint")
        self._retries = meter.create_counter("rtscore_pool_retries", description="calls sent again elsewhere")
        self._hedges = meter.create_counter("rtscore_pool_hedges", description="hedged calls")
        self._hedge_wins = meter.create_counter(
            "rtscore_pool_hedge_wins", description="hedges answered first"
        )
        self._ejections = meter.create_counter("rtscore_pool_ejections", description="endpoint ejections")
        self._batch_rows = meter.create_histogram(
            "rtscore_pool_batch_rows", description="rows per micro-batched frame"
        )
        self._latency = meter.create_histogram(
            "rtscore_pool_call_duration", unit="s", description="attempt latency by endpoint and code"
        )
        self.picks: Counter[str] = Counter()
        self.retries = 0
        self.hedges = 0
        self.hedge_wins = 0
        self.ejections = 0
        self.batches = 0
        self.batched_rows = 0
        # attribute sets made once per endpoint and code: no dict per call
        self._attrs: dict[tuple[str, str], tuple[dict[str, str], dict[str, str]]] = {}

    def attempt(self, endpoint: str, code: str, seconds: float) -> None:
        """One attempt on `endpoint` ended with `code` after `seconds`."""
        attrs = self._attrs.get((endpoint, code))
        if attrs is None:
            attrs = self._attrs[endpoint, code] = (
                {"endpoint": endpoint},
                {"endpoint": endpoint, "code": code},
            )
        self.picks[endpoint] += 1
        self._picks.add(1, attrs[0])
        self._latency.record(seconds, attrs[1])

    def retried(self) -> None:
        """A call goes to another endpoint after a failure."""
        self.retries += 1
        self._retries.add(1)

    def hedged(self) -> None:
        """A call got a second copy."""
        self.hedges += 1
        self._hedges.add(1)

    def hedge_won(self) -> None:
        """The second copy answered first."""
        self.hedge_wins += 1
        self._hedge_wins.add(1)

    def ejected(self, endpoint: str) -> None:
        """An endpoint was ejected."""
        self.ejections += 1
        self._ejections.add(1, {"endpoint": endpoint})

    def batched(self, rows: int) -> None:
        """A micro-batch of `rows` single-row calls went out as one frame."""
        self.batches += 1
        self.batched_rows += rows
        self._batch_rows.record(rows)

    def snapshot(self) -> dict[str, Any]:
        """The plain counts: `pool` (calls per endpoint), `retries`, `hedges`, and the rest."""
        return {
            "pool": dict(sorted(self.picks.items())),
            "retries": self.retries,
            "hedges": self.hedges,
            "hedge_wins": self.hedge_wins,
            "ejections": self.ejections,
            "batches": self.batches,
            "batched_rows": self.batched_rows,
        }
