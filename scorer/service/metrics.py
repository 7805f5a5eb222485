"""Metrics of the scorer, exported on a Prometheus endpoint of its own.

Model loads, canaries and the model count go through OpenTelemetry. Calls are too many for it: its SDK
spends ~13 µs per call on attribute sets and locks, more than the rest of the call's bookkeeping. Each
call adds to a plain tally on the event loop instead (~1 µs), which a collector turns into the same
Prometheus families (`rtscore_scorer_calls_total`, `rtscore_scorer_errors_total`,
`rtscore_scorer_call_duration_seconds`) when the endpoint is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

import grpc
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from scorer.service.canary import CanaryResult
from scorer.service.model import HostedModel
from scorer.service.table import ModelTable

# Seconds; dense below 2 ms, where the scorer's latency objectives live.
LATENCY_BUCKETS = (0.0002, 0.0004, 0.0006, 0.0008, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)  # fmt: skip
LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Distinct (method, model) pairs tallied; calls naming further models count under model="(other)", so
# callers inventing model names cannot grow the process's memory or the scrape without bound.
MAX_CALL_SERIES = 1000
_OTHER = "(other)"
_OK = grpc.StatusCode.OK


class CallTally:
    """Calls of one method on one model: a latency histogram and a count per status code."""

    __slots__ = ("buckets", "codes", "seconds")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.seconds = 0.0
        self.codes: dict[grpc.StatusCode, int] = {}

    def add(self, code: grpc.StatusCode, seconds: float) -> None:
        """Count one call."""
        self.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # a bucket holds values <= its bound
        self.seconds += seconds
        self.codes[code] = self.codes.get(code, 0) + 1


class CallMetrics(Collector):
    """Per-call tallies, and the Prometheus families they read as."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str], CallTally] = {}

    def record(self, method: str, model: str, code: grpc.StatusCode, seconds: float) -> None:
        """Count one finished call; runs on the event loop, so plain increments are safe."""
        tally = self._tallies.get((method, model))
        if tally is None:
            tally = self._new_tally(method, model)
        tally.add(code, seconds)

    def _new_tally(self, method: str, model: str) -> CallTally:
        if len(self._tallies) >= MAX_CALL_SERIES:
            model = _OTHER
            if (method, model) in self._tallies:
                return self._tallies[(method, model)]
        tally = self._tallies[(method, model)] = CallTally()
        return tally

    def collect(self) -> Iterator[Metric]:
        """The call families, from a copy of the tallies (the loop may add to them meanwhile)."""
        by_model = ["method", "model"]
        latency = HistogramMetricFamily(
            "rtscore_scorer_call_duration_seconds", "call latency by method and model", labels=by_model
        )
        calls = CounterMetricFamily("rtscore_scorer_calls", "calls by method, model, code",
                                    labels=["method", "model", "code"])  # fmt: skip
        errors = CounterMetricFamily("rtscore_scorer_errors", "failed calls by code",
                                     labels=["method", "model", "code"])  # fmt: skip
        for (method, model), tally in list(self._tallies.items()):
            counts, codes, seconds = list(tally.buckets), dict(tally.codes), tally.seconds
            cumulative, running = [], 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                running += count
                cumulative.append((_bound(bound), running))
            latency.add_metric([method, model], cumulative, seconds)
            for code, count in codes.items():
                calls.add_metric([method, model, code.name], count)
                if code != _OK:
                    errors.add_metric([method, model, code.name], count)
        yield latency
        yield calls
        yield errors


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ScorerMetrics:
    """Latency, requests, errors, model load time and canary results, per model and method."""

    def __init__(self) -> None:
        # A registry per instance, so several scorers in one process (tests) do not collide.
        self.registry = CollectorRegistry()
        self.calls = CallMetrics()
        self.registry.register(self.calls)
        self._reader = PrometheusMetricReader(registry=self.registry)
        load = ExplicitBucketHistogramAggregation(LOAD_BUCKETS)
        views = [View(instrument_name="rtscore_scorer_model_load_duration", aggregation=load)]
        self._provider = MeterProvider(metric_readers=[self._reader], views=views)
        meter = self._provider.get_meter("rtscore.scorer")
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
        self.calls.record(method, model, code, seconds)

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
