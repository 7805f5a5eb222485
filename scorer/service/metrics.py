"""OpenTelemetry metrics of the scorer, exported on a Prometheus endpoint of its own."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, start_http_server

from scorer.service.canary import CanaryResult
from scorer.service.model import HostedModel
from scorer.service.table import ModelTable

# Seconds; dense below 2 ms, where the scorer's latency objectives live.
LATENCY_BUCKETS = (0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)  # fmt: skip
LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ScorerMetrics:
    """Latency, requests, errors, model load time and canary results, per model and method."""

    def __init__(self) -> None:
        # A registry per instance, so several scorers in one process (tests) do not collide.
        self.registry = CollectorRegistry()
        self._reader = PrometheusMetricReader(registry=self.registry)
        latency = ExplicitBucketHistogramAggregation(LATENCY_BUCKETS)
        load = ExplicitBucketHistogramAggregation(LOAD_BUCKETS)
        views = [
            View(instrument_name="rtscore_scorer_call_duration", aggregation=latency),
            View(instrument_name="rtscore_scorer_model_load_duration", aggregation=load),
        ]
        self._provider = MeterProvider(metric_readers=[self._reader], views=views)
        meter = self._provider.get_meter("rtscore.scorer")
        self._latency = meter.create_histogram(
            "rtscore_scorer_call_duration", unit="s", description="call latency by method and model"
        )
        self._calls = meter.create_counter("rtscore_scorer_calls", description="calls by method, model, code")
        self._errors = meter.create_counter("rtscore_scorer_errors", description="failed calls by code")
        self._load = meter.create_histogram(
            "rtscore_scorer_model_load_duration", unit="s", description="time to load and install a model"
        )
        self._canary = meter.create_counter("rtscore_scorer_canary_runs", description="canary runs by result")
        self._models = 0
        meter.create_observable_gauge(
            "rtscore_scorer_models", [self._observe_models], description="models hosted"
        )
        self._server: Any = None

    def record_call(self, method: str, model: str, code: grpc.StatusCode, seconds: float) -> None:
        """Count one finished call."""
        attrs = {"method": method, "model": model, "code": code.name}
        self._latency.record(seconds, {"method": method, "model": model})
        self._calls.add(1, attrs)
        if code != grpc.StatusCode.OK:
            self._errors.add(1, attrs)

    def model_loaded(self, hosted: HostedModel, seconds: float) -> None:
        """Record a load time."""
        self._load.record(seconds, {"model": hosted.name})

    def canary_ran(self, hosted: HostedModel, result: CanaryResult) -> None:
        """Count a canary run."""
        self._canary.add(1, {"model": hosted.name, "result": "pass" if result.ok else "fail"})

    async def models_changed(self, table: ModelTable) -> None:
        """Track the hosted model count."""
        self._models = len(table)

    def _observe_models(self, _options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        return [Observation(self._models)]

    def serve(self, host: str, port: int) -> int:
        """Expose `/metrics` over HTTP; returns the port bound (0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint and the meter provider; safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._provider.shutdown()
