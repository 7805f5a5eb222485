"""A bundle of an assembler feeding one classifier scores dense rows straight through its classifier:
the same values as `Bundle.transform`, and over gRPC the same reply bytes as the general path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from protos.rtscore.v1 import scorer_pb2
from scorer.bundle.model import Bundle, load_bundle
from scorer.bundle.plan import dense_plan
from scorer.export import export_sklearn
from scorer.frame import LeapFrame
from scorer.service.dense_frames import dense_frame
from tests.unit.test_scorer_grpc import Running, load, running, wire_frame

__all__ = ["running"]  # the server fixture, shared with the gRPC surface tests

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "mleap"
RNG = np.random.default_rng(7)
X = RNG.normal(size=(400, 5))
Y = (X[:, 0] - X[:, 2] + RNG.normal(size=400) > 0).astype(np.int64)
Y3 = np.digitize(X[:, 1], [-0.5, 0.5])
MODELS: dict[str, Any] = {
    "forest": RandomForestClassifier(n_estimators=7, max_depth=6, random_state=0).fit(X, Y),
    "forest-3": RandomForestClassifier(n_estimators=5, max_depth=5, random_state=0).fit(X, Y3),
    "boosted": GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, Y),
    "logistic": LogisticRegression().fit(X, Y),
}


def exported(tmp_path: Path, kind: str) -> Bundle:
    return load_bundle(export_sklearn(MODELS[kind], tmp_path / f"{kind}.zip", name=kind), cache=None)


def rows_with_edges(n: int, infinite: bool = True) -> np.ndarray:
    """Random rows with NaN, zeros and (for trees; a linear model's sum of them is NaN) infinities."""
    rows = RNG.normal(scale=2.0, size=(n, 5))
    rows[RNG.random(size=rows.shape) < 0.1] = np.nan
    if infinite:
        rows[RNG.random(size=rows.shape) < 0.05] = np.inf
        rows[RNG.random(size=rows.shape) < 0.05] = -np.inf
    rows[RNG.random(size=rows.shape) < 0.1] = 0.0
    return rows


def transformed(bundle: Bundle, names: list[str], rows: np.ndarray) -> LeapFrame:
    fields = [next(f for f in bundle.input_schema if f.name == n) for n in names]
    return bundle.transform(LeapFrame(fields, [rows[:, i].copy() for i in range(len(names))]))


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("n_rows", [1, 2, 37])
def test_a_plan_scores_exactly_what_the_bundle_transforms(tmp_path: Path, kind: str, n_rows: int) -> None:
    bundle = exported(tmp_path, kind)
    plan = dense_plan(bundle.root_op, bundle.input_schema, bundle.output_schema)
    assert plan is not None
    assert plan.output_names == [f.name for f in bundle.output_schema]
    rows = rows_with_edges(n_rows, infinite=kind != "logistic")
    general = transformed(bundle, plan.names, rows)
    block = np.frombuffer(rows.tobytes(), dtype="<f8").reshape(rows.shape)  # read-only, as off the wire
    planned = plan.run(block)
    assert [f.name for f, _ in planned] == plan.output_names
    for field, array in planned:
        assert field == general.field(field.name)
        expected = general.column(field.name)
        assert (array.dtype, array.shape) == (expected.dtype, expected.shape)
        np.testing.assert_array_equal(array, expected)  # NaN equals NaN here


@pytest.mark.parametrize("bundle", ["demo.zip", "airbnb.model.lr.zip", "one_hot_encoder_pipeline.zip"])
def test_bundles_of_other_shapes_have_no_plan(bundle: str) -> None:
    loaded = load_bundle(FIXTURES / bundle, cache=None)
    assert dense_plan(loaded.root_op, loaded.input_schema, loaded.output_schema) is None


async def test_planned_calls_reply_byte_for_byte_as_the_general_path(
    running: Running, tmp_path: Path
) -> None:
    bundle = exported(tmp_path, "forest-3")
    running.loader.models["/forest"] = bundle  # type: ignore[assignment]  # a real bundle among fakes
    await load(running, "fraud", "/forest", "v1")
    plan = running.server.core.table.resolve("fraud").plan  # the served version's own plan
    assert plan is not None
    rows = rows_with_edges(9)
    names = plan.names

    async def score(**request: Any) -> bytes:
        reply = await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", **request))
        assert (reply.model, reply.version) == ("fraud", "v1")
        return reply.frame.SerializeToString()

    planned = await score(frame=dense_frame(names, rows))
    columnar = await score(frame=wire_frame(**{n: rows[:, i].tolist() for i, n in enumerate(names)}))
    order = names[::-1]  # another order: the general path decodes it
    reordered = await score(frame=dense_frame(order, rows[:, ::-1]))
    assert planned == columnar == reordered
    # selected outputs come in the order asked, as the general path sends them; a request for an input
    # column or for the inputs back takes the general path
    for select in (["probability"], ["prediction", "raw_prediction"], [names[0], "probability"]):
        assert await score(frame=dense_frame(names, rows), select=select) == await score(
            frame=dense_frame(order, rows[:, ::-1]), select=select
        )
    picked = await running.scorer.Score(
        scorer_pb2.ScoreRequest(
            model="fraud", frame=dense_frame(names, rows), select=["prediction", "probability"]
        )
    )
    assert [c.name for c in picked.frame.columns] == ["prediction", "probability"]
    with_inputs = await running.scorer.Score(
        scorer_pb2.ScoreRequest(model="fraud", frame=dense_frame(names, rows), include_inputs=True)
    )
    assert [c.name for c in with_inputs.frame.columns] == [*names, *plan.output_names]
    # a block of the plan's names with the wrong number of values is refused by the general decoder
    bad = dense_frame(names, rows)
    bad.dense.values = bad.dense.values[:-8]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await score(frame=bad)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "need" in (refused.value.details() or "")
    assert await score(frame=dense_frame(names, rows)) == planned  # and the server keeps serving
