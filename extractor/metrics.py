"""OpenTelemetry metrics of the extractor (per-stage latency, decisions, errors, shadow copies, velocity),
exported on a Prometheus endpoint of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, start_http_server

# Seconds; dense below 3 ms, where the extractor's objectives live.
STAGE_BUCKETS = (0.0001, 0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01,
                 0.025, 0.05, 0.1, 0.25, 1.0)  # fmt: skip
STAGES = ("features", "velocity", "score", "total")


class ExtractorMetrics:
    """Stage latency histograms, decisions by action, errors by code, and gauges read from counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # one per instance, so several servers in one process coexist
        self._reader = PrometheusMetricReader(registry=self.registry)
        view = View(
            instrument_name="rtscore_extractor_stage_duration",
            aggregation=ExplicitBucketHistogramAggregation(STAGE_BUCKETS),
        )
        self._provider = MeterProvider(metric_readers=[self._reader], views=[view])
        meter = self._provider.get_meter("rtscore.extractor")
        self._stage = meter.create_histogram(
            "rtscore_extractor_stage_duration", unit="s", description="Evaluate time per stage"
        )
        self._stage_attrs = {stage: {"stage": stage} for stage in STAGES}
        self._decisions = meter.create_counter(
            "rtscore_extractor_decisions", description="decisions by action"
        )
        self._errors = meter.create_counter("rtscore_extractor_errors", description="failed calls by code")
        self._gauges: dict[str, Callable[[], float]] = {}
        for name, description in (
            ("shadow_offered", "shadow copies offered to the producer"),
            ("shadow_delivered", "shadow copies Kafka acknowledged"),
            ("shadow_dropped", "shadow copies dropped (queue full or undelivered)"),
            ("velocity_fallbacks", "calls answered from local velocity because Redis did not answer"),
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

    def watch(self, name: str, read: Callable[[], float]) -> None:
        """Report `read()` as the counter `rtscore_extractor_{name}` at every scrape."""
        self._gauges[name] = read

    def stages(self, features_s: float, velocity_s: float, score_s: float, total_s: float) -> None:
        """Record one Evaluate's stage times."""
        record, attrs = self._stage.record, self._stage_attrs
        record(features_s, attrs["features"])
        record(velocity_s, attrs["velocity"])
        record(score_s, attrs["score"])
        record(total_s, attrs["total"])

    def decided(self, action: str) -> None:
        """Count one decision."""
        self._decisions.add(1, {"action": action})

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
            self._server = None
        self._provider.shutdown()
