"""Property: random and malformed input to every RPC gets a client-error status or a correct answer,
never an internal error, and the scorer stays up."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.ml.combust.mleap.pb import grpc_pb2_grpc, mleap_pb2
from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from scorer.bundle import load_bundle
from scorer.frame import FrameError
from scorer.service.frames import check_inputs, to_leap_frame
from tests.paths import FIXTURES

DEMO = FIXTURES / "demo.zip"
CLIENT_ERRORS = {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

names = st.sampled_from(["demo:a", "demo:c", "demo:d", "demo:prediction", "x", ""]) | st.text(max_size=8)
refs = st.sampled_from(["demo", "demo@v1", "demo@v2", "ghost", "", "@", "demo@"]) | st.text(max_size=12)
numbers = st.floats(allow_nan=True, allow_infinity=True)
keys = st.sampled_from(["schema", "rows", "fields", "name", "type", "base", "values", "dimensions"])
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
)


@st.composite
def columns(draw: st.DrawFn) -> frame_pb2.Column:
    return frame_pb2.Column(
        name=draw(names),
        type=cast(frame_pb2.ColumnType, draw(st.sampled_from([0, 1, 2, 3, 4, 5, 17]))),
        shape=draw(st.lists(st.integers(-2, 4), max_size=2)),
        doubles=draw(st.lists(numbers, max_size=9)),
        int64s=draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)),
        strings=draw(st.lists(st.text(max_size=4), max_size=3)),
        bools=draw(st.lists(st.booleans(), max_size=3)),
    )


@st.composite
def frames(draw: st.DrawFn) -> frame_pb2.Frame:
    rows = draw(st.integers(-1, 4))
    double = frame_pb2.COLUMN_TYPE_DOUBLE
    wellformed = [
        frame_pb2.Column(name=n, type=double, doubles=draw(st.lists(numbers, min_size=rows, max_size=rows)))
        for n in draw(st.lists(st.sampled_from(["demo:a", "demo:c", "demo:d"]), unique=True))
    ] if rows >= 0 else []  # fmt: skip
    return frame_pb2.Frame(rows=rows, columns=wellformed + draw(st.lists(columns(), max_size=2)))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cache = tmp_path_factory.mktemp("cache")
    cmd = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", "--port", "0", "--model", f"demo={DEMO}"]
    env = {**os.environ, "RTSCORE_CACHE_DIR": str(cache)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    assert "serving on" in banner, banner
    yield banner.split("serving on ")[1].split()[0]
    proc.send_signal(signal.SIGTERM)
    proc.stdout.close()
    assert proc.wait(30) == 0, "the scorer did not survive the fuzzing to drain cleanly"


@pytest.fixture(scope="module")
def channel(target: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target) as ch:
        yield ch


def code_of(err: object) -> str:
    assert isinstance(err, grpc.RpcError)
    return str(err.code().name)


def attempt(call: Callable[[], Any]) -> tuple[Any, str]:
    """The reply and "OK", or None and the status code's name."""
    try:
        return call(), "OK"
    except grpc.RpcError as err:
        return None, code_of(err)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=1e-12)


DEMO_BUNDLE = load_bundle(DEMO, cache=None)


@FUZZ
@given(ref=refs, frame=frames(), include_inputs=st.booleans())
def test_score_answers_random_frames_correctly_or_with_a_client_error(
    channel: grpc.Channel, ref: str, frame: frame_pb2.Frame, include_inputs: bool
) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    request = scorer_pb2.ScoreRequest(model=ref, frame=frame, include_inputs=include_inputs)
    reply, code = attempt(lambda: stub.Score(request, timeout=10))
    if code != "OK":
        assert code in CLIENT_ERRORS
        return
    try:  # the server said yes: the in-process runtime must give the same numbers
        local = DEMO_BUNDLE.transform(check_inputs(to_leap_frame(frame, {}), DEMO_BUNDLE.input_schema))
    except FrameError as err:
        pytest.fail(f"server scored a frame the runtime refuses: {err}")
    got = {c.name: list(c.doubles) for c in reply.frame.columns}
    want = local.column("demo:prediction").tolist()
    assert all(_same(a, b) for a, b in zip(got["demo:prediction"], want, strict=True))


@FUZZ
@given(ref=refs)
def test_model_lookups_answer_or_say_not_found(channel: grpc.Channel, ref: str) -> None:
    stub = scorer_pb2_grpc.ScorerStub(channel)
    mleap = grpc_pb2_grpc.MleapStub(channel)
    calls = [
        lambda: stub.GetModel(scorer_pb2.GetModelRequest(model=ref), timeout=10),
        lambda: mleap.GetModel(mleap_pb2.GetModelRequest(model_name=ref), timeout=10),
        lambda: mleap.GetBundleMeta(mleap_pb2.GetBundleMetaRequest(model_name=ref), timeout=10),
        lambda: stub.ListModels(scorer_pb2.ListModelsRequest(), timeout=10),
    ]
    if ref not in ("demo", "demo@v1") and not ref.startswith("demo@"):
        calls.append(lambda: stub.UnloadModel(scorer_pb2.UnloadModelRequest(model=ref), timeout=10))
        calls.append(lambda: mleap.UnloadModel(mleap_pb2.UnloadModelRequest(model_name=ref), timeout=10))
    for call in calls:
        assert attempt(call)[1] in {"OK", *CLIENT_ERRORS}


@FUZZ
@given(name=st.text(max_size=8), junk=st.binary(max_size=64), as_zip=st.booleans())
def test_loading_garbage_is_invalid_argument(
    channel: grpc.Channel, tmp_path: Path, name: str, junk: bytes, as_zip: bool
) -> None:
    path = tmp_path / ("junk.zip" if as_zip else "junk.bin")
    path.write_bytes((b"PK\x03\x04" if as_zip else b"") + junk)
    stub = scorer_pb2_grpc.ScorerStub(channel)
    mleap = grpc_pb2_grpc.MleapStub(channel)
    for call in (
        lambda: stub.LoadModel(scorer_pb2.LoadModelRequest(name=name or "g", path=str(path)), timeout=10),
        lambda: mleap.LoadModel(
            mleap_pb2.LoadModelRequest(model_name=name, uri=f"file://{path}"), timeout=10
        ),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert code_of(err.value) == "INVALID_ARGUMENT", err.value


@FUZZ
@given(
    ref=refs,
    body=st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()),
    fmt=st.sampled_from(["", "ml.combust.mleap.json", "ml.combust.mleap.avro"]),
)  # fmt: skip
def test_mleap_transform_of_random_bytes_never_breaks_the_server(
    channel: grpc.Channel, ref: str, body: bytes, fmt: str
) -> None:
    mleap = grpc_pb2_grpc.MleapStub(channel)
    request = mleap_pb2.TransformFrameRequest(model_name=ref, frame=body, format=fmt)
    reply, code = attempt(lambda: mleap.Transform(request, timeout=10))
    if code != "OK":
        assert code in CLIENT_ERRORS
        return
    assert reply.status == mleap_pb2.STATUS_ERROR or json.loads(reply.frame)["schema"]


def test_the_scorer_still_serves_after_fuzzing(channel: grpc.Channel) -> None:
    frame = json.loads((FIXTURES / "frame.demo.json").read_text())
    request = mleap_pb2.TransformFrameRequest(model_name="demo", frame=json.dumps(frame).encode())
    reply = grpc_pb2_grpc.MleapStub(channel).Transform(request, timeout=10)
    assert reply.status == mleap_pb2.STATUS_OK
    assert len(json.loads(reply.frame)["rows"]) == len(frame["rows"])
