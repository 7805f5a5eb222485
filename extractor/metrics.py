"""Metrics of the extractor, exported on a Prometheus endpoint of its own: per-stage latency histograms,
decisions by action, errors by code, shadow copies offered, delivered and dropped, velocity fallbacks.

The per-call stage histograms are plain bucket counts read by a Prometheus collector at scrape time:
four OpenTelemetry `Histogram.record` calls cost ~40% of an Evaluate's own CPU (profiled: ~25 µs each,
attribute hashing and locks), as the scorer found for its call metrics. Everything else, counted once
per call or read at scrape time, goes through OpenTelemetry.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

# Seconds; dense below 3 ms, where the extractor's objectives live.
STAGE_BUCKETS = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01,
                 0.025, 0.05, 0.1, 0.25, 1.0)  # fmt: skip
STAGES = ("features", "velocity", "score", "total")


class StageHistograms(Collector):
    """Bucket counts per stage, updated on the event loop, read as Prometheus histograms."""

    def __init__(self) -> None:
        self._buckets = {stage: [0] * (len(STAGE_BUCKETS) + 1) for stage in STAGES}  # last: +Inf
        self._sums = dict.fromkeys(STAGES, 0.0)

    def record(self, stage: str, seconds: float) -> None:
        """Count one stage time."""
        self._buckets[stage][bisect_left(STAGE_BUCKETS, seconds)] += 1  # a bucket holds values <= bound
        self._sums[stage] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The `rtscore_extractor_stage_duration_seconds` family."""
        family = HistogramMetricFamily(
            "rtscore_extractor_stage_duration_seconds", "Evaluate time per stage", labels=["stage"]
        )
        bounds = [repr(b) for b in STAGE_BUCKETS] + ["+Inf"]
        for stage in STAGES:
            counts, running, cumulative = list(self._buckets[stage]), 0, []
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric([stage], cumulative, self._sums[stage])
        yield family


class ExtractorMetrics:
    """Stage latency histograms, decisions by action, errors by code, and gauges read from counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # one per instance, so several servers in one process coexist
        self.stage_histograms = StageHistograms()
        self.registry.register(self.stage_histograms)
        self._reader = PrometheusMetricReader(registry=self.registry)
        self._provider = MeterProvider(metric_readers=[self._reader])
        meter = self._provider.get_meter("rtscore.extractor")
        self.decisions = dict.fromkeys(("approve", "review", "decline"), 0)
        meter.create_observable_counter(
            "rtscore_extractor_decisions", [self._observe_decisions], description="decisions by action"
        )
        self._errors = meter.create_counter("rtscore_extractor_errors", description="failed calls by code")
        self._gauges: dict[str, Callable[[], float]] = {}
        for name, description in (
            ("shadow_offered", "shadow copies offered to the producer"),
            ("shadow_delivered", "shadow copies Kafka acknowledged"),
            ("shadow_dropped", "shadow copies dropped (queue full or undelivered)"),
            ("velocity_fallbacks", "calls answered from local velocity because Redis did not answer"),
            ("pool_retries", "scorer calls sent again to another scorer after a failure"),
            ("pool_hedges", "scorer calls also sent to a second scorer (--hedge)"),
            ("pool_hedge_wins", "hedged scorer calls the second scorer answered first"),
            ("pool_ejections", "scorers ejected from the pool after failures"),
        ):
            meter.create_observable_counter(
                f"rtscore_extractor_{name}", [self._observer(name)], description=description
            )
        self._server: Any = None

    def _observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            read = self._gauges.get(name)
            return [Observation(read())] if read is not None else []

        return observe

    def _observe_decisions(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {"action": action}) for action, count in self.decisions.items()]

    def watch(self, name: str, read: Callable[[], float]) -> None:
        """Report `read()` as the counter `rtscore_extractor_{name}` at every scrape."""
        self._gauges[name] = read

    def stages(self, features_s: float, velocity_s: float, score_s: float, total_s: float) -> None:
        """Record one Evaluate's stage times."""
        record = self.stage_histograms.record
        record("features", features_s)
        record("velocity", velocity_s)
        record("score", score_s)
        record("total", total_s)

    def decided(self, action: str) -> None:
        """Count one decision."""
        self.decisions[action] += 1

    def failed(self, code: str) -> None:
        """Count one failed call."""
        self._errors.add(1, {"code": code})

    def serve(self, host: str, port: int) -> int:
        """Start the Prometheus endpoint; returns its port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        """Stop the endpoint and the provider; idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._provider.shutdown()
