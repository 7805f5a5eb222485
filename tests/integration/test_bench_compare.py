"""The before server, several client processes, and `rtscore bench compare` end to end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from benchmarks import clients
from benchmarks.frames import score_requests, to_frame
from benchmarks.loadgen import LoadSpec
from benchmarks.targets import sklearn_server
from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc
from rtscore.cli import main

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def model_and_frame(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    folder = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(x, y)
    joblib.dump(model, folder / "model.joblib")
    frame = {"schema": {"fields": [{"name": f, "type": "double"} for f in FEATURES]}, "rows": x[:20].tolist()}
    (folder / "frame.json").write_text(json.dumps(frame))
    return folder / "model.joblib", folder / "frame.json", model


class SyncSleepingScorer(scorer_pb2_grpc.ScorerServicer):
    """A thread-pool server answering after 10 ms, reachable from other processes."""

    def Score(self, request: scorer_pb2.ScoreRequest, context: Any) -> scorer_pb2.ScoreResponse:  # noqa: N802
        time.sleep(0.010)
        return scorer_pb2.ScoreResponse(model=request.model)


@pytest.fixture
def threaded_target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    scorer_pb2_grpc.add_ScorerServicer_to_server(SyncSleepingScorer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None).wait()


@pytest.mark.slow
def test_two_client_processes_share_the_rate_and_merge(threaded_target: str) -> None:
    requests = score_requests(
        {"schema": {"fields": [{"name": "a", "type": "double"}]}, "rows": [[1.0]]}, "m", 1
    )
    spec = LoadSpec(threaded_target, rate=80, arrivals="constant", duration=1.5, warmup=0.3)
    result = clients.run(spec, requests, processes=2)
    summary = result.recorder.summary()
    assert summary is not None
    assert result.processes == 2
    assert 110 <= result.sent <= 130
    assert result.recorder.requests == result.sent
    assert 9.5 <= summary.p50 <= 25.0


@pytest.mark.slow
def test_before_server_answers_with_predict_proba(model_and_frame: tuple[Path, Path, Any]) -> None:
    model_path, frame_path, model = model_and_frame
    frame = json.loads(frame_path.read_text())
    with sklearn_server(model_path) as server, grpc.insecure_channel(server.target) as channel:
        stub = scorer_pb2_grpc.ScorerStub(channel)
        reply = stub.Score(scorer_pb2.ScoreRequest(model="m", frame=to_frame(frame)), timeout=30)
        probability = next(c for c in reply.frame.columns if c.name == "probability")
        expected = model.predict_proba(np.asarray(frame["rows"]))
        np.testing.assert_allclose(np.asarray(probability.doubles).reshape(-1, 2), expected)
        partial = {"schema": {"fields": [{"name": "f0", "type": "double"}]}, "rows": [[1.0]]}
        with pytest.raises(grpc.RpcError) as failure:
            stub.Score(scorer_pb2.ScoreRequest(model="m", frame=to_frame(partial)), timeout=30)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "the model takes 4" in (failure.value.details() or "")


@pytest.mark.slow
def test_compare_measures_what_it_can_and_names_what_it_skipped(
    model_and_frame: tuple[Path, Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_path, frame_path, _ = model_and_frame
    out = tmp_path / "compare.json"
    argv = ["bench", "compare", "--targets", "before,rtscore-1", "--model-file", str(model_path)]
    argv += [
        "--frame",
        str(frame_path),
        "--rate",
        "20",
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--json",
        str(out),
    ]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "skipped rtscore-1: no bundle given" in captured.err
    assert "avg vs before" in captured.out
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert run["name"] == "before"
    assert run["errors"] == {}
    assert 12 <= run["requests"] <= 30
    assert run["latency_ms"]["p99"] >= run["latency_ms"]["p50"] > 0
    assert report["fixture"]["trees"] == 5
    assert "rtscore-1" in report["compare"]["skipped"]
    assert out.with_suffix(".png").exists()
