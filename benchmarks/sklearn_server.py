"""The *before* target: a scikit-learn pickle behind a minimal Python gRPC server, as users run it today.

It answers `rtscore.v1.Scorer/Score` by calling `predict_proba` on the frame's columns, so the load
generator can measure it exactly like the rtscore scorer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from rtscore.errors import InvalidArgument, RtscoreError


def load_estimator(path: Path) -> Any:
    """Unpickle a scikit-learn classifier saved with joblib, checking that it can `predict_proba`."""
    import joblib

    try:
        estimator = joblib.load(path)
    except FileNotFoundError as err:
        raise InvalidArgument(f"{path}: no such model file") from err
    except Exception as err:  # unpickling runs arbitrary code: any failure means "not a model file"
        raise InvalidArgument(f"{path}: not a joblib pickle: {err}") from err
    if not hasattr(estimator, "predict_proba"):
        raise InvalidArgument(f"{path}: {type(estimator).__name__} has no predict_proba")
    if "n_jobs" in estimator.get_params():
        # one row per call: joblib's thread fan-out only adds latency, so serve it at its fastest
        estimator.set_params(n_jobs=1)
    return estimator


def feature_matrix(frame: frame_pb2.Frame, features: Sequence[str] | None) -> np.ndarray:
    """The frame's columns as a float64 [rows, features] matrix, in the estimator's feature order."""
    columns = {c.name: c for c in frame.columns}
    if features is None:
        names = [c.name for c in frame.columns]
    else:
        missing = [f for f in features if f not in columns]
        if missing:
            raise InvalidArgument(f"frame lacks feature columns {missing[:5]}")
        names = list(features)
    parts = []
    for name in names:
        column = columns[name]
        if column.type == frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR:
            parts.append(np.asarray(column.doubles, dtype=np.float64).reshape(frame.rows, -1))
        elif column.type == frame_pb2.COLUMN_TYPE_DOUBLE:
            parts.append(np.asarray(column.doubles, dtype=np.float64).reshape(frame.rows, 1))
        elif column.type == frame_pb2.COLUMN_TYPE_INT64:
            parts.append(np.asarray(column.int64s, dtype=np.float64).reshape(frame.rows, 1))
        else:
            raise InvalidArgument(f"column {name!r}: the sklearn target takes numbers only")
    if not parts:
        raise InvalidArgument("frame has no columns")
    return np.hstack(parts)


class SklearnScorer(scorer_pb2_grpc.ScorerServicer):
    """Scores frames with one scikit-learn classifier."""

    def __init__(self, estimator: Any, name: str) -> None:
        self.estimator = estimator
        self.name = name
        names = getattr(estimator, "feature_names_in_", None)
        self.features: list[str] | None = None if names is None else [str(n) for n in names]

    def Score(  # noqa: N802
        self, request: scorer_pb2.ScoreRequest, context: grpc.ServicerContext
    ) -> scorer_pb2.ScoreResponse:
        """predict_proba on the frame's rows."""
        try:
            x = feature_matrix(request.frame, self.features)
            expected = getattr(self.estimator, "n_features_in_", x.shape[1])
            if x.shape[1] != expected:
                raise InvalidArgument(
                    f"frame has {x.shape[1]} feature values per row, the model takes {expected}"
                )
        except RtscoreError as err:
            context.abort(err.code, str(err))
        proba = self.estimator.predict_proba(x)
        prediction = np.asarray(self.estimator.classes_, dtype=np.float64)[proba.argmax(axis=1)]
        out = frame_pb2.Frame(rows=request.frame.rows)
        out.columns.add(
            name="probability",
            type=frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR,
            shape=[proba.shape[1]],
            doubles=proba.ravel().tolist(),
        )
        out.columns.add(name="prediction", type=frame_pb2.COLUMN_TYPE_DOUBLE, doubles=prediction.tolist())
        return scorer_pb2.ScoreResponse(frame=out, model=self.name)

    def GetModel(  # noqa: N802
        self, request: scorer_pb2.GetModelRequest, context: grpc.ServicerContext
    ) -> scorer_pb2.ModelInfo:
        """The estimator's feature names as double inputs."""
        n = int(getattr(self.estimator, "n_features_in_", 0))
        names = self.features or [f"f{i}" for i in range(n)]
        inputs = [frame_pb2.FieldSpec(name=f, type=frame_pb2.COLUMN_TYPE_DOUBLE) for f in names]
        outputs = [
            frame_pb2.FieldSpec(
                name="probability",
                type=frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR,
                shape=[len(self.estimator.classes_)],
            ),
            frame_pb2.FieldSpec(name="prediction", type=frame_pb2.COLUMN_TYPE_DOUBLE),
        ]
        return scorer_pb2.ModelInfo(name=self.name, inputs=inputs, outputs=outputs, health="SERVING")


def serve(model: Path, host: str, port: int, threads: int, name: str) -> None:
    """Serve until interrupted; prints `listening on HOST:PORT` once ready."""
    servicer = SklearnScorer(load_estimator(model), name)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    scorer_pb2_grpc.add_ScorerServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise InvalidArgument(f"cannot listen on {host}:{port}")
    server.start()
    print(f"listening on {host}:{bound}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(grace=1.0)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `rtscore bench sklearn-serve` (and of `python -m benchmarks.sklearn_server`)."""
    parser.add_argument("model", type=Path, help="classifier saved with joblib")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port, printed once listening")
    parser.add_argument("--threads", type=int, default=4, help="gRPC worker threads")
    parser.add_argument("--name", default="model", help="model name reported in responses")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the pickle; errors become one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sklearn_server", description=__doc__)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        serve(args.model, args.host, args.port, args.threads, args.name)
    except RtscoreError as err:
        print(f"sklearn server: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
