"""Scalers, imputer, binarizer, bucketizer and math ops follow MLeap's formulas."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from scorer.bundle import BundleError, FrameError
from tests.unit.bundle_files import NodeSpec, doubles_frame, load

V = np.array([[1.0, 2.0, 3.0], [4.0, -5.0, 0.5]])


def _unary(op: str, attrs: dict) -> NodeSpec:
    return NodeSpec("n", op, attrs, [("input", "x")], [("output", "y")])


def test_standard_scaler_with_mean_and_std_zeroes_constant_features(tmp_path: Path) -> None:
    mean, std = np.array([1.0, 0.0, 2.0]), np.array([2.0, 4.0, 0.0])
    node = _unary("standard_scaler", {"mean": ("tensor", mean), "std": ("tensor", std)})
    out = load(node, tmp_path, "protobuf").transform(doubles_frame(x=V)).column("y")
    np.testing.assert_allclose(out, [[0.0, 0.5, 0.0], [1.5, -1.25, 0.0]], rtol=1e-15)


def test_standard_scaler_with_std_only_does_not_centre(tmp_path: Path) -> None:
    node = _unary("standard_scaler", {"std": ("tensor", np.array([2.0, 4.0, 0.5]))})
    out = load(node, tmp_path).transform(doubles_frame(x=V)).column("y")
    np.testing.assert_allclose(out, [[0.5, 0.5, 6.0], [2.0, -1.25, 1.0]], rtol=1e-15)


def test_min_max_scaler_maps_range_and_constant_features_to_half(tmp_path: Path) -> None:
    attrs = {"min": ("tensor", np.array([0.0, -5.0, 3.0])), "max": ("tensor", np.array([4.0, 5.0, 3.0]))}
    out = load(_unary("min_max_scaler", attrs), tmp_path).transform(doubles_frame(x=V)).column("y")
    np.testing.assert_allclose(out, [[0.25, 0.7, 0.5], [1.0, 0.0, 0.5]], rtol=1e-15)


def test_imputer_replaces_nan_and_the_missing_value(tmp_path: Path) -> None:
    attrs = {
        "surrogate_value": ("double", 7.5),
        "missing_value": ("double", -1.0),
        "strategy": ("string", "mean"),
    }
    out = load(_unary("imputer", attrs), tmp_path).transform(doubles_frame(x=np.array([np.nan, -1.0, 2.0])))
    np.testing.assert_array_equal(out.column("y"), [7.5, 7.5, 2.0])


def test_binarizer_is_strictly_greater_than_threshold(tmp_path: Path) -> None:
    attrs = {"threshold": ("double", 2.0), "input_shapes": ("shapes", [("scalar", None)])}
    out = load(_unary("binarizer", attrs), tmp_path).transform(doubles_frame(x=np.array([1.0, 2.0, 2.5])))
    np.testing.assert_array_equal(out.column("y"), [0.0, 0.0, 1.0])


def test_bucketizer_follows_spark_bounds_and_nan_handling(tmp_path: Path) -> None:
    attrs = {"splits": ("double_list", [-1.0, 0.0, 1.0, 10.0]), "handle_invalid": ("string", "keep")}
    bundle = load(_unary("bucketizer", attrs), tmp_path)
    out = bundle.transform(doubles_frame(x=np.array([-1.0, -0.5, 0.0, 0.99, 1.0, 10.0, np.nan])))
    np.testing.assert_array_equal(out.column("y"), [0, 0, 1, 1, 2, 2, 3])
    with pytest.raises(FrameError, match="outside the bucket bounds"):
        bundle.transform(doubles_frame(x=np.array([11.0])))


@pytest.mark.parametrize(
    ("operation", "fn"),
    [
        ("log", math.log),
        ("exp", math.exp),
        ("sqrt", math.sqrt),
        ("abs", abs),
        ("round", lambda v: math.floor(v + 0.5)),
    ],
)
def test_math_unary_matches_java_math(tmp_path: Path, operation: str, fn: object) -> None:
    x = np.array([0.5, 2.5, 3.0])
    out = load(_unary("math_unary", {"operation": ("string", operation)}), tmp_path).transform(
        doubles_frame(x=x)
    )
    np.testing.assert_allclose(out.column("y"), [fn(v) for v in x.tolist()], rtol=1e-15)  # type: ignore[operator]


def test_math_binary_uses_a_constant_for_a_missing_input(tmp_path: Path) -> None:
    attrs = {"operation": ("string", "rem"), "db": ("double", 3.0)}
    node = NodeSpec("n", "math_binary", attrs, [("input_a", "a")], [("output", "y")])
    out = load(node, tmp_path).transform(doubles_frame(a=np.array([7.0, -7.0])))
    np.testing.assert_array_equal(out.column("y"), [1.0, -1.0])  # Java's % keeps the dividend's sign


def test_unknown_math_operation_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="attribute 'operation' is 'cube'"):
        load(_unary("math_unary", {"operation": ("string", "cube")}), tmp_path)
