"""The per-call bookkeeping: tallies read as Prometheus families, bounded series, and request ids made
up only for calls that fail without one."""

from __future__ import annotations

import io
import json
import logging
import re

import grpc
import pytest
from prometheus_client import generate_latest

from protos.rtscore.v1 import scorer_pb2
from scorer.service.logs import JsonFormatter
from scorer.service.metrics import MAX_CALL_SERIES, ScorerMetrics
from tests.unit.test_scorer_grpc import Running, load, running, wire_frame

__all__ = ["running"]  # the server fixture, shared with the gRPC surface tests


def test_call_tallies_read_as_cumulative_histograms_and_counts_by_code() -> None:
    metrics = ScorerMetrics()
    try:
        for seconds in (0.0002, 0.00021, 0.0009, 3.0):  # a bound itself falls in its bucket
            metrics.record_call("Score", "fraud", grpc.StatusCode.OK, seconds)
        metrics.record_call("Score", "fraud", grpc.StatusCode.INVALID_ARGUMENT, 0.0001)
        text = generate_latest(metrics.registry).decode()
    finally:
        metrics.close()
    bucket = 'rtscore_scorer_call_duration_seconds_bucket{{le="{}",method="Score",model="fraud"}} {}'
    assert bucket.format("0.0002", "2.0") in text  # 0.0001 and 0.0002
    assert bucket.format("0.0004", "3.0") in text
    assert bucket.format("0.001", "4.0") in text
    assert bucket.format("1.0", "4.0") in text
    assert bucket.format("+Inf", "5.0") in text
    assert 'rtscore_scorer_call_duration_seconds_count{method="Score",model="fraud"} 5.0' in text
    assert 'rtscore_scorer_calls_total{code="OK",method="Score",model="fraud"} 4.0' in text
    assert 'rtscore_scorer_errors_total{code="INVALID_ARGUMENT",method="Score",model="fraud"} 1.0' in text
    assert 'rtscore_scorer_errors_total{code="OK"' not in text


def test_invented_model_names_stop_adding_series_past_the_bound() -> None:
    metrics = ScorerMetrics()
    try:
        for i in range(MAX_CALL_SERIES + 50):
            metrics.record_call("Score", f"m{i}", grpc.StatusCode.NOT_FOUND, 0.0001)
        text = generate_latest(metrics.registry).decode()
    finally:
        metrics.close()
    counted = re.findall(
        r'rtscore_scorer_calls_total\{code="NOT_FOUND",method="Score",model="([^"]+)"\}', text
    )
    assert len(counted) == MAX_CALL_SERIES + 1
    assert 'rtscore_scorer_calls_total{code="NOT_FOUND",method="Score",model="(other)"} 50.0' in text


async def test_a_failed_call_without_a_request_id_gets_one_in_its_log_and_status(
    running: Running,
) -> None:
    await load(running, "fraud", "/sum1")
    running.loader.models["/sum1"].broken = True
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    calls_log = logging.getLogger("scorer.service.calls")
    calls_log.addHandler(handler)
    calls_log.setLevel(logging.INFO)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[1])))
    finally:
        calls_log.removeHandler(handler)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    said = re.search(r"request id ([0-9a-f]{16})", err.value.details() or "")
    assert said is not None, err.value.details()
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["msg"], line["request_id"], line["model"]) == ("call failed", said.group(1), "fraud")
    assert "trace_id" not in line  # the caller sent no traceparent
    running.loader.models["/sum1"].broken = False
    reply = await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[2])))
    assert list(reply.frame.columns[0].doubles) == [4.0]
