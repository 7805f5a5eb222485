"""The scorer's gRPC surface on a real server (port 0) hosting fake models: status mapping, health,
reflection, MLeap's API and metrics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.request
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.ml.bundle import bundle_pb2
from protos.ml.combust.mleap.pb import grpc_pb2_grpc, mleap_pb2
from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from scorer.service.logs import JsonFormatter
from scorer.service.server import ScorerServer
from scorer.service.settings import ScorerSettings
from tests.unit.test_scorer_core import Loader, SumModel, canary_for, wait_for

CT = frame_pb2.ColumnType


def wire_frame(**cols: list[float]) -> frame_pb2.Frame:
    rows = len(next(iter(cols.values())))
    return frame_pb2.Frame(
        rows=rows,
        columns=[frame_pb2.Column(name=n, type=CT.COLUMN_TYPE_DOUBLE, doubles=v) for n, v in cols.items()],
    )


class Running:
    """A started server and stubs for it."""

    def __init__(self, server: ScorerServer, loader: Loader, channel: grpc.aio.Channel) -> None:
        self.server, self.loader, self.channel = server, loader, channel
        self.scorer = scorer_pb2_grpc.ScorerStub(channel)
        self.mleap = grpc_pb2_grpc.MleapStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    async def status(self, service: str) -> int:
        reply = await self.health.Check(health_pb2.HealthCheckRequest(service=service))
        return int(reply.status)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    loader = Loader()
    loader.models.update({"/sum1": SumModel(1.0), "/sum2": SumModel(2.0)})
    settings = ScorerSettings(
        port=0, max_in_flight=4, canary_interval_s=3600, metrics_port=0, drain_grace_s=1
    )
    async with (
        ScorerServer(settings, loader) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield Running(server, loader, channel)


async def load(r: Running, name: str, path: str, version: str = "") -> scorer_pb2.ModelInfo:
    return await r.scorer.LoadModel(scorer_pb2.LoadModelRequest(name=name, path=path, version=version))


async def test_score_returns_model_outputs_and_the_version_used(running: Running) -> None:
    await load(running, "fraud", "/sum1", "v1")
    reply = await running.scorer.Score(
        scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1, 2], b=[3, 4]))
    )
    assert (reply.model, reply.version, reply.frame.rows) == ("fraud", "v1", 2)
    assert [(c.name, list(c.doubles)) for c in reply.frame.columns] == [("sum", [5.0, 7.0])]
    with_inputs = await running.scorer.Score(
        scorer_pb2.ScoreRequest(model="fraud@v1", frame=wire_frame(a=[1], b=[1]), include_inputs=True)
    )
    assert [c.name for c in with_inputs.frame.columns] == ["a", "b", "sum"]


async def test_get_and_list_models_describe_schema_digest_and_health(running: Running) -> None:
    await load(running, "fraud", "/sum1", "v1")
    await load(running, "churn", "/sum2", "v7")
    info = await running.scorer.GetModel(scorer_pb2.GetModelRequest(model="fraud"))
    assert (info.name, info.version, info.sha256, info.health) == (
        "fraud",
        "v1",
        SumModel(1.0).sha256,
        "SERVING",
    )
    assert [(f.name, f.type) for f in info.inputs] == [
        ("a", CT.COLUMN_TYPE_DOUBLE),
        ("b", CT.COLUMN_TYPE_DOUBLE),
    ]
    assert (info.bundle_format, info.mleap_version, info.root_op, info.path) == (
        "json",
        "0.25.3",
        "pipeline",
        "/sum1",
    )
    listed = await running.scorer.ListModels(scorer_pb2.ListModelsRequest())
    assert [(m.name, m.version) for m in listed.models] == [("churn", "v7"), ("fraud", "v1")]


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (
            scorer_pb2.ScoreRequest(model="ghost", frame=wire_frame(a=[1], b=[1])),
            "NOT_FOUND",
            "'ghost' is not hosted",
        ),
        (
            scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1])),
            "INVALID_ARGUMENT",
            "missing column 'b'",
        ),
        (
            scorer_pb2.ScoreRequest(
                model="fraud",
                frame=frame_pb2.Frame(rows=1, columns=[
                    frame_pb2.Column(name="a", type=CT.COLUMN_TYPE_DOUBLE, doubles=[1]),
                    frame_pb2.Column(name="b", type=CT.COLUMN_TYPE_STRING, strings=["x"]),
                ]),
            ),
            "INVALID_ARGUMENT",
            "column 'b': the model reads scalar double, the frame has scalar string",
        ),
        (
            scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1, 2], b=[1])),
            "INVALID_ARGUMENT",
            "column 'b': has 1 values for 2 rows",
        ),
        (
            scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[1]), select=["nope"]),
            "INVALID_ARGUMENT",
            "selected column 'nope'",
        ),
    ],
)  # fmt: skip
async def test_bad_calls_get_a_status_naming_the_problem(
    running: Running, request_: scorer_pb2.ScoreRequest, code: str, message: str
) -> None:
    await load(running, "fraud", "/sum1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.scorer.Score(request_)
    assert err.value.code().name == code
    assert message in (err.value.details() or "")


async def test_bad_bundle_is_invalid_argument_and_other_models_keep_serving(running: Running) -> None:
    await load(running, "fraud", "/sum1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await load(running, "churn", "/missing.zip")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot read bundle /missing.zip" in (err.value.details() or "")
    reply = await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[1])))
    assert list(reply.frame.columns[0].doubles) == [3.0]


async def test_calls_past_the_in_flight_bound_get_resource_exhausted(running: Running) -> None:
    await load(running, "fraud", "/sum1")
    model = running.loader.models["/sum1"]
    model.gate.clear()
    request = scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[1]))
    held = [asyncio.ensure_future(running.scorer.Score(request)) for _ in range(4)]
    await wait_for(lambda: running.server.core.gate.in_flight == 4)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.scorer.Score(request, timeout=1)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    model.gate.set()
    assert all(list(r.frame.columns[0].doubles) == [3.0] for r in await asyncio.gather(*held))


async def test_oversized_messages_are_refused_cleanly(running: Running) -> None:
    await load(running, "fraud", "/sum1")
    big = wire_frame(a=[1.0] * 1_200_000, b=[1.0] * 1_200_000)  # ~19 MB, over the 16 MiB bound
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=big))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reply = await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[1])))
    assert reply.frame.rows == 1


async def test_health_follows_canaries_per_model_and_overall(running: Running) -> None:
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    assert await running.status("") == not_serving, "no model loaded yet"
    await running.scorer.LoadModel(
        scorer_pb2.LoadModelRequest(
            name="fraud", version="v1", path="/sum1",
            canary_frame=wire_frame(a=[1, 2], b=[3, 4]), canary_expected=wire_frame(sum=[5, 7]),
        )
    )  # fmt: skip
    assert [await running.status(s) for s in ("", "fraud", "fraud@v1", "rtscore.v1.Scorer")] == [serving] * 4
    running.loader.models["/sum1"].broken = True
    await running.server.core.check_canaries()
    assert [await running.status(s) for s in ("", "fraud", "ml.combust.mleap.pb.Mleap")] == [not_serving] * 3
    info = await running.scorer.GetModel(scorer_pb2.GetModelRequest(model="fraud"))
    assert info.health == "NOT_SERVING"
    running.loader.models["/sum1"].broken = False
    await running.server.core.check_canaries()
    assert [await running.status(s) for s in ("", "fraud")] == [serving, serving]


async def test_canary_runs_on_the_settings_timer() -> None:
    loader = Loader()
    loader.models["/sum1"] = model = SumModel(1.0)
    settings = ScorerSettings(port=0, canary_interval_s=0.05)
    async with ScorerServer(settings, loader) as server:
        await server.core.load("fraud", "v1", "/sum1", canary_for(1.0))
        hosted = server.core.table.resolve("fraud")
        model.broken = True
        for _ in range(100):
            if not hosted.serving:
                break
            await asyncio.sleep(0.02)
        assert not hosted.serving, "the timer never ran the canary"


async def test_reflection_lists_scorer_mleap_and_health(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    replies = [
        r
        async for r in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    ]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"rtscore.v1.Scorer", "ml.combust.mleap.pb.Mleap", "grpc.health.v1.Health"} <= names


async def test_mleap_api_loads_transforms_and_describes_models(running: Running) -> None:
    model = await running.mleap.LoadModel(mleap_pb2.LoadModelRequest(model_name="fraud", uri="file:///sum1"))
    assert (model.name, model.uri) == ("fraud", "/sum1")
    frame = {"schema": {"fields": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]},
             "rows": [[1.0, 2.0], [3.0, 4.5]]}  # fmt: skip
    request = mleap_pb2.TransformFrameRequest(
        model_name="fraud", format="ml.combust.mleap.json", frame=json.dumps(frame).encode(), tag=42,
        options=mleap_pb2.TransformOptions(select=["a", "sum"]),
    )  # fmt: skip
    reply = await running.mleap.Transform(request)
    assert (reply.status, reply.tag) == (mleap_pb2.STATUS_OK, 42)
    assert json.loads(reply.frame)["rows"] == [[1.0, 4.0], [3.0, 8.5]]
    meta = await running.mleap.GetBundleMeta(mleap_pb2.GetBundleMetaRequest(model_name="fraud"))
    assert [f.name for f in meta.output_schema.fields] == ["sum"]
    assert meta.input_schema.fields[0].data_type.base == bundle_pb2.DOUBLE
    only_a = {"schema": {"fields": [{"name": "a", "type": "double"}]}, "rows": [[1.0]]}
    failed = await running.mleap.Transform(
        mleap_pb2.TransformFrameRequest(model_name="fraud", frame=json.dumps(only_a).encode())
    )
    assert (failed.status, "missing column 'b'" in failed.error) == (mleap_pb2.STATUS_ERROR, True)
    with pytest.raises(grpc.aio.AioRpcError) as unreadable:
        await running.mleap.Transform(mleap_pb2.TransformFrameRequest(model_name="fraud", frame=b"{not json"))
    assert unreadable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await running.mleap.UnloadModel(mleap_pb2.UnloadModelRequest(model_name="fraud"))).name == "fraud"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.mleap.GetModel(mleap_pb2.GetModelRequest(model_name="fraud"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_metrics_endpoint_counts_calls_by_method_model_and_code(running: Running) -> None:
    await load(running, "fraud", "/sum1")
    await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=wire_frame(a=[1], b=[1])))
    with pytest.raises(grpc.aio.AioRpcError):
        await running.scorer.Score(scorer_pb2.ScoreRequest(model="ghost", frame=wire_frame(a=[1], b=[1])))
    url = f"http://127.0.0.1:{running.server.metrics_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert 'rtscore_scorer_calls_total{code="OK",method="Score",model="fraud"' in text
    assert 'rtscore_scorer_errors_total{code="NOT_FOUND",method="Score",model="ghost"' in text
    assert 'rtscore_scorer_call_duration_seconds_bucket{le="0.001",method="Score",model="fraud"' in text
    assert "rtscore_scorer_model_load_duration_seconds_count" in text


async def test_logs_are_json_lines_carrying_request_id_model_and_trace(running: Running) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    calls_log = logging.getLogger("scorer.service.calls")
    calls_log.addHandler(handler)
    calls_log.setLevel(logging.INFO)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    metadata = (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"), ("x-request-id", "req-123"))
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await running.scorer.Score(
                scorer_pb2.ScoreRequest(model="ghost", frame=wire_frame(a=[1], b=[1])), metadata=metadata
            )
    finally:
        calls_log.removeHandler(handler)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["request_id"], line["model"], line["trace_id"]) == ("req-123", "ghost", trace_id)
    assert (line["msg"], line["code"], line["method"]) == ("call refused", "NOT_FOUND", "Score")
