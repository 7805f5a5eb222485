"""linear_regression and logistic_regression compute what MLeap computes, in every bundle layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.bundle_files import FORMATS, NodeSpec, doubles_frame, load, pipeline

RNG = np.random.default_rng(7)
X = RNG.normal(size=(50, 3))


def _node(op: str, attrs: dict, outputs: list[tuple[str, str]]) -> NodeSpec:
    return NodeSpec("m", op, attrs, inputs=[("features", "features")], outputs=outputs)


@pytest.mark.parametrize(("fmt", "zipped"), FORMATS)
def test_linear_regression_is_dot_plus_intercept(tmp_path: Path, fmt: str, zipped: bool) -> None:
    coef = np.array([0.5, -2.0, 3.25])
    node = _node(
        "linear_regression",
        {"coefficients": ("tensor", coef), "intercept": ("double", 1.5)},
        [("prediction", "y")],
    )
    bundle = load(pipeline(node), tmp_path, fmt, zipped)
    out = bundle.transform(doubles_frame(features=X))
    expected = [sum(c * v for c, v in zip(coef, row, strict=True)) + 1.5 for row in X.tolist()]
    np.testing.assert_allclose(out.column("y"), expected, rtol=1e-12)
    assert out.names == ["features", "y"]
    assert bundle.format == fmt


def test_zero_intercept_written_as_an_empty_scalar_reads_as_zero(tmp_path: Path) -> None:
    # Bundle.ML's JSON writer leaves zero scalars out: {"intercept": {}}
    node = _node(
        "linear_regression",
        {"coefficients": ("tensor", np.ones(3)), "intercept": ("double", 0.0)},
        [("prediction", "y")],
    )
    out = load(node, tmp_path, "protobuf").transform(doubles_frame(features=X))
    np.testing.assert_allclose(out.column("y"), X.sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("threshold", [None, 0.8])
def test_binary_logistic_regression_outputs_raw_probability_and_thresholded_prediction(
    tmp_path: Path, threshold: float | None
) -> None:
    coef = np.array([1.0, -0.5, 2.0])
    attrs = {"coefficients": ("tensor", coef), "intercept": ("double", -0.25), "num_classes": ("long", 2)}
    if threshold is not None:
        attrs["threshold"] = ("double", threshold)
    outputs = [("prediction", "pred"), ("raw_prediction", "raw"), ("probability", "prob")]
    out = load(_node("logistic_regression", attrs, outputs), tmp_path).transform(doubles_frame(features=X))
    margin = X @ coef - 0.25
    p1 = np.exp(margin) / (1.0 + np.exp(margin))
    np.testing.assert_allclose(out.column("raw"), np.c_[-margin, margin], rtol=1e-12)
    np.testing.assert_allclose(out.column("prob"), np.c_[1 - p1, p1], rtol=1e-12)
    np.testing.assert_array_equal(out.column("pred"), (p1 > (threshold or 0.5)).astype(float))
    # MLeap appends raw, probability, prediction in that order, whatever the node lists
    assert out.names == ["features", "raw", "prob", "pred"]


def test_multinomial_logistic_regression_reads_the_matrix_column_major(tmp_path: Path) -> None:
    coef = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [-1.0, 1.0, 0.25], [0.0, 0.0, 1.0]])  # 4 classes
    intercept = np.array([0.1, -0.2, 0.3, 0.0])
    stored = coef.reshape(-1, order="F").reshape(4, 3)  # what MLeap writes: Spark's column-major values
    attrs = {
        "coefficient_matrix": ("tensor", stored),
        "intercept_vector": ("tensor", intercept),
        "num_classes": ("long", 4),
        "thresholds": ("double_list", [1.0, 1.0, 1.0, 0.1]),
    }
    outputs = [("prediction", "pred"), ("probability", "prob")]
    out = load(_node("logistic_regression", attrs, outputs), tmp_path, "protobuf").transform(
        doubles_frame(features=X)
    )
    margins = X @ coef.T + intercept
    e = np.exp(margins - margins.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.column("prob"), prob, rtol=1e-12)
    scaled = prob / np.array([1.0, 1.0, 1.0, 0.1])
    np.testing.assert_array_equal(out.column("pred"), scaled.argmax(axis=1))


def test_features_of_the_wrong_width_are_a_frame_error(tmp_path: Path) -> None:
    from scorer.bundle import FrameError

    node = _node(
        "linear_regression",
        {"coefficients": ("tensor", np.ones(3)), "intercept": ("double", 1.0)},
        [("prediction", "y")],
    )
    with pytest.raises(FrameError, match="column 'features' has 2 values per row, expected 3"):
        load(node, tmp_path).transform(doubles_frame(features=X[:, :2]))


def test_a_margin_beyond_exp_range_gives_probability_zero_or_one_without_a_warning(tmp_path: Path) -> None:
    # exp(-margin) overflows to inf past a margin of about -709: the sigmoid is then exactly 0
    coef = np.array([1.0, 0.0, 0.0])
    attrs = {"coefficients": ("tensor", coef), "intercept": ("double", 0.0), "num_classes": ("long", 2)}
    outputs = [("prediction", "pred"), ("probability", "prob")]
    x = np.array([[-1e4, 0.0, 0.0], [1e4, 0.0, 0.0], [-np.inf, 0.0, 0.0]])
    out = load(_node("logistic_regression", attrs, outputs), tmp_path).transform(doubles_frame(features=x))
    np.testing.assert_array_equal(out.column("prob"), [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(out.column("pred"), [0.0, 1.0, 0.0])
