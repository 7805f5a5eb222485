"""The comparison's reference servers: the transport floor and MLeap served by grpc-java."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.frames import to_frame
from benchmarks.native import relay_binary
from benchmarks.relay_floor import DECISION
from benchmarks.targets import (
    ServerProcess,
    floor_server,
    mleap_served,
    native_relay,
    relay_floor,
    rtscore_scorer,
)
from protos.rtscore.v1 import extractor_pb2, frame_pb2, scorer_pb2, scorer_pb2_grpc
from rtscore.errors import Unavailable
from scorer.bundle.model import load_bundle
from scorer.service.frames import check_inputs, to_leap_frame, to_wire_frame
from tests.integration.cli_run import rtscore
from tests.integration.redis_fixtures import PrivateRedis, private_redis
from tests.paths import FIXTURES

__all__ = ["private_redis"]
pytestmark = pytest.mark.slow


def _leap_frame(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def _in_process(bundle: Path, wire: frame_pb2.Frame) -> frame_pb2.Frame:
    """rtscore's own runtime on the frame: the model's outputs, as the scorer encodes them."""
    loaded = load_bundle(bundle)
    inputs = {f.name: f for f in loaded.input_schema}
    out = loaded.transform(check_inputs(to_leap_frame(wire, inputs), loaded.input_schema))
    return to_wire_frame(out, [f.name for f in loaded.output_schema])


def _dense_doubles(wire: frame_pb2.Frame) -> frame_pb2.Frame:
    """The same rows with every double column moved into the row-major `dense` block."""
    doubles = [c for c in wire.columns if c.type == frame_pb2.COLUMN_TYPE_DOUBLE]
    matrix = np.column_stack([np.asarray(c.doubles, dtype="<f8") for c in doubles])
    dense = frame_pb2.DenseDoubles(names=[c.name for c in doubles], values=matrix.tobytes())
    kept = [c for c in wire.columns if c.type != frame_pb2.COLUMN_TYPE_DOUBLE]
    return frame_pb2.Frame(rows=wire.rows, columns=kept, dense=dense)


def _assert_same_frames(got: frame_pb2.Frame, want: frame_pb2.Frame) -> None:
    assert [(c.name, c.type, list(c.shape)) for c in got.columns] == [
        (c.name, c.type, list(c.shape)) for c in want.columns
    ]
    for mine, theirs in zip(got.columns, want.columns, strict=True):
        np.testing.assert_allclose(mine.doubles, theirs.doubles, rtol=1e-12, atol=1e-12, err_msg=mine.name)
        assert list(mine.int64s) == list(theirs.int64s), mine.name
        assert list(mine.strings) == list(theirs.strings), mine.name


def _serving(channel: grpc.Channel, service: str) -> bool:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.mark.jvm
def test_mleap_served_scores_columnar_and_dense_frames_like_rtscore() -> None:
    bundle = FIXTURES / "airbnb.model.lr.zip"
    wire = to_frame(_leap_frame("frame.airbnb.json"))
    expected = _in_process(bundle, wire)
    try:
        server = mleap_served(bundle, "airbnb")
    except Unavailable as err:
        pytest.skip(str(err))
    with server, grpc.insecure_channel(server.target) as channel:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        assert _serving(channel, "rtscore.v1.Scorer")
        assert _serving(channel, "airbnb")

        columnar = stub.Score(scorer_pb2.ScoreRequest(model="airbnb", frame=wire), timeout=30)
        assert columnar.model == "airbnb"
        _assert_same_frames(columnar.frame, expected)
        # Strings stay columns; every double input travels in the dense block.
        dense = _dense_doubles(wire)
        assert dense.dense.names
        assert dense.columns
        mixed = stub.Score(
            scorer_pb2.ScoreRequest(model=f"airbnb@{columnar.version}", frame=dense), timeout=30
        )
        _assert_same_frames(mixed.frame, expected)

        picked = stub.Score(
            scorer_pb2.ScoreRequest(model="airbnb", frame=wire, select=["price_prediction"]), timeout=30
        )
        assert [c.name for c in picked.frame.columns] == ["price_prediction"]
        info = stub.GetModel(scorer_pb2.GetModelRequest(model="airbnb"), timeout=30)
        assert {f.name for f in info.outputs} == {c.name for c in expected.columns}

        truncated = frame_pb2.Frame()
        truncated.CopyFrom(dense)
        truncated.dense.values = dense.dense.values[:-8]
        refusals = {
            "unknown model": (scorer_pb2.ScoreRequest(model="other", frame=wire), grpc.StatusCode.NOT_FOUND),
            "short dense block": (
                scorer_pb2.ScoreRequest(model="airbnb", frame=truncated),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            "missing inputs": (
                scorer_pb2.ScoreRequest(model="airbnb", frame=frame_pb2.Frame(rows=1)),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        }
        for what, (request, code) in refusals.items():
            with pytest.raises(grpc.RpcError) as failure:
                stub.Score(request, timeout=30)
            assert failure.value.code() == code, what
            assert failure.value.details(), what
        # Still serving after the refusals.
        again = stub.Score(scorer_pb2.ScoreRequest(model="airbnb", frame=wire), timeout=30)
        _assert_same_frames(again.frame, expected)


def test_a_floor_of_two_processes_answers_from_both_and_stops_them_all() -> None:
    bundle, frame = FIXTURES / "demo.zip", FIXTURES / "frame.demo.json"
    floor = floor_server(bundle, frame, "bench", workers=2)
    with floor, contextlib.ExitStack() as channels:
        assert floor.name == "floor-2"
        assert floor.process is not None
        workers = psutil.Process(floor.process.pid).children()
        assert len(workers) == 2
        # SO_REUSEPORT hands each new connection to one worker: over 20 of them, both get some (one
        # worker taking all 20 has odds 2 x 2**-20)
        replies = set()
        for _ in range(20):
            options = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own
            channel = channels.enter_context(grpc.insecure_channel(floor.target, options=options))
            replies.add(channel.unary_unary("/rtscore.v1.Scorer/Score")(b"", timeout=30))
        assert len(replies) == 1  # the same fixed reply from either worker
        for worker in workers:
            held = [c for c in worker.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED]
            assert held, f"worker {worker.pid} took no connection"
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_floor_answers_with_the_scorers_own_reply() -> None:
    bundle, frame = FIXTURES / "demo.zip", FIXTURES / "frame.demo.json"
    request = scorer_pb2.ScoreRequest(model="bench", frame=to_frame(_leap_frame("frame.demo.json"), [0]))
    floor, scorer = floor_server(bundle, frame, "bench"), rtscore_scorer(bundle, "bench", workers=1)
    with contextlib.ExitStack() as stack:
        for server in (floor, scorer):  # both boot at once
            server.launch()
            stack.callback(server.stop)
        floor.wait_ready()
        scorer.wait_ready()
        replies = {}
        for server in (floor, scorer):
            with grpc.insecure_channel(server.target) as channel:
                call = channel.unary_unary("/rtscore.v1.Scorer/Score")
                replies[server.name] = call(request.SerializeToString(), timeout=30)
                assert _serving(channel, "rtscore.v1.Scorer"), server.name
        with grpc.insecure_channel(floor.target) as channel:
            # Fixed: whatever the request says, the same bytes come back.
            other = channel.unary_unary("/rtscore.v1.Scorer/Score")(b"\x0a\x01x", timeout=30)
    assert len(replies["floor"]) == len(replies["rtscore-1"])
    assert other == replies["floor"]
    ours, theirs = (scorer_pb2.ScoreResponse.FromString(replies[n]) for n in ("floor", "rtscore-1"))
    assert (ours.model, ours.version) == (theirs.model, theirs.version)
    _assert_same_frames(ours.frame, theirs.frame)


def test_the_kernel_floor_scores_dense_rows_of_a_planned_bundle_and_refuses_anything_else(
    tmp_path: Path,
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from benchmarks.fixture import frame_json
    from scorer.export import export_sklearn
    from scorer.service.dense_frames import dense_frame

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    forest = RandomForestClassifier(n_estimators=4, max_depth=5, random_state=0).fit(x, x[:, 0] > 0)
    bundle = export_sklearn(forest, tmp_path / "rf.zip", name="rf")
    loaded = load_bundle(bundle)
    names = [f.name for f in loaded.input_schema]
    frame = tmp_path / "frame.json"
    frame.write_text(json.dumps(frame_json(x[:3], names)))
    kernel = floor_server(bundle, frame, "bench", kernel=True)
    with kernel, grpc.insecure_channel(kernel.target) as channel:
        assert kernel.name == "kernel-floor"
        call = channel.unary_unary("/rtscore.v1.Scorer/Score")
        dense = scorer_pb2.ScoreRequest(model="bench", frame=dense_frame(names, x[:2]))
        reply = scorer_pb2.ScoreResponse.FromString(call(dense.SerializeToString(), timeout=30))
        assert reply.model == "bench"
        assert [c.name for c in reply.frame.columns] == [f.name for f in loaded.output_schema]
        columnar = scorer_pb2.ScoreRequest(model="bench", frame=to_frame(json.loads(frame.read_text()), [0]))
        with pytest.raises(grpc.RpcError) as refused:
            call(columnar.SerializeToString(), timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert call(dense.SerializeToString(), timeout=30)  # and it keeps serving
        # `bench run --frame` sends an all-double frame dense unless told otherwise
        for form, codes in (([], {}), (["--form", "columns"], {"INVALID_ARGUMENT": 20})):
            args = ["--target", kernel.target, "--model", "bench", "--frame", str(frame), *form]
            ran = rtscore(
                "bench", "run", *args, "--count", "20", "--warmup", "0", "--json", str(tmp_path / "r.json")
            )
            assert ran.returncode == 0, ran.stderr
            assert json.loads((tmp_path / "r.json").read_text())["runs"][0]["errors"] == codes
    demo = floor_server(FIXTURES / "demo.zip", FIXTURES / "frame.demo.json", "bench", kernel=True)
    with pytest.raises(Unavailable, match="no kernel floor"):
        demo.start()


def _relay(kind: str, floor: str, redis_url: str, request: Path, tmp_path: Path) -> ServerProcess:
    if kind == "python":
        return relay_floor(floor, redis_url, request)
    binary = relay_binary()
    if binary is None:
        pytest.skip("rtscore-relay is not built (needs Go)")
    decision = tmp_path / "decision.pb"
    decision.write_bytes(DECISION)
    return native_relay(floor, redis_url, request, decision, binary)


@pytest.mark.parametrize("kind", ["python", "native"])
def test_the_relay_floor_rides_out_a_late_redis_as_the_extractor_does_and_passes_scorer_errors_on(
    kind: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    bundle, frame = FIXTURES / "demo.zip", FIXTURES / "frame.demo.json"
    request = tmp_path / "request.pb"
    wire = to_frame(_leap_frame("frame.demo.json"), [0])
    request.write_bytes(scorer_pb2.ScoreRequest(model="bench", frame=wire).SerializeToString())
    floor = floor_server(bundle, frame, "bench")
    with floor, _relay(kind, floor.target, private_redis.url, request, tmp_path) as relay:
        evaluate = grpc.insecure_channel(relay.target).unary_unary("/rtscore.v1.Extractor/Evaluate")
        decision = extractor_pb2.Decision.FromString(evaluate(b"", timeout=30))
        assert decision.model == "fraud"
        assert private_redis.pid is not None
        os.kill(private_redis.pid, signal.SIGSTOP)  # Redis stops answering
        try:
            began = time.monotonic()
            assert evaluate(b"", timeout=30) == decision.SerializeToString()  # given up after 20 ms
            assert time.monotonic() - began < 1.0
        finally:
            os.kill(private_redis.pid, signal.SIGCONT)
        floor.stop()
        with pytest.raises(grpc.RpcError) as failure:
            evaluate(b"", timeout=30)
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE  # the scorer's status, not UNKNOWN
        assert failure.value.details().startswith("scorer: ")
