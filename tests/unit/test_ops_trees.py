"""Tree ops: decision tree, random forest and GBT, classifier and regressor, and the forest cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.unit.bundle_files import FORMATS, NodeSpec, TreeSpec, doubles_frame, load

RNG = np.random.default_rng(3)
X = RNG.normal(size=(200, 2))

# pre-order: split on feature 0 at 0.0; left: split feature 1 at 0.5; right: leaf
TREE_A: TreeSpec = [
    ("split", 0, 0.0),
    ("split", 1, 0.5),
    ("leaf", [3.0, 1.0]),
    ("leaf", [0.0, 2.0]),
    ("leaf", [1.0, 1.0]),
]
TREE_B: TreeSpec = [("split", 1, -0.25), ("leaf", [4.0, 0.0]), ("leaf", [1.0, 3.0])]
REG_A: TreeSpec = [("split", 0, 0.0), ("leaf", [1.5]), ("leaf", [-2.0])]
REG_B: TreeSpec = [("split", 1, 0.1), ("split", 0, -1.0), ("leaf", [0.25]), ("leaf", [0.5]), ("leaf", [4.0])]


def _leaf(tree: TreeSpec, row: list[float]) -> list[float]:
    """Walk a pre-order tree spec: the reference the compiled kernel is checked against."""

    def walk(i: int) -> tuple[list[float], int]:
        node = tree[i]
        if node[0] == "leaf":
            return list(node[1]), i + 1
        left, after_left = walk(i + 1)
        right, after_right = walk(after_left)
        return (left if row[node[1]] <= node[2] else right), after_right

    return walk(0)[0]


def _ensemble(op: str, trees: list[TreeSpec], attrs: dict, outputs: list[tuple[str, str]]) -> NodeSpec:
    names = [f"tree{i}" for i in range(len(trees))]
    sub_op = (
        "decision_tree_classifier"
        if "classifier" in op and op != "gbt_classifier"
        else "decision_tree_regression"
    )
    models = {n: (sub_op, {"num_features": ("long", 2)}, t) for n, t in zip(names, trees, strict=True)}
    attrs = {"num_features": ("long", 2), "trees": ("string_list", names), **attrs}
    return NodeSpec("forest", op, attrs, [("features", "f")], outputs, models=models)


OUTS = [("prediction", "pred"), ("raw_prediction", "raw"), ("probability", "prob")]


@pytest.mark.parametrize(("fmt", "zipped"), FORMATS)
def test_random_forest_classifier_votes_with_normalised_leaf_counts(
    tmp_path: Path, fmt: str, zipped: bool
) -> None:
    node = _ensemble(
        "random_forest_classifier",
        [TREE_A, TREE_B],
        {"num_classes": ("long", 2), "tree_weights": ("double_list", [1.0, 1.0])},
        OUTS,
    )
    out = load(node, tmp_path, fmt, zipped).transform(doubles_frame(f=X))
    raw = []
    for row in X.tolist():
        votes = [0.0, 0.0]
        for t in (TREE_A, TREE_B):
            leaf = _leaf(t, row)
            votes = [v + c / sum(leaf) for v, c in zip(votes, leaf, strict=True)]
        raw.append(votes)
    raw_arr = np.array(raw)
    np.testing.assert_allclose(out.column("raw"), raw_arr, rtol=1e-12)
    np.testing.assert_allclose(out.column("prob"), raw_arr / raw_arr.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(out.column("pred"), raw_arr.argmax(axis=1))


def test_decision_tree_classifier_thresholds_scale_probabilities(tmp_path: Path) -> None:
    attrs = {
        "num_features": ("long", 2),
        "num_classes": ("long", 2),
        "thresholds": ("double_list", [0.9, 0.1]),
    }
    node = NodeSpec(
        "dt", "decision_tree_classifier", attrs, [("features", "f")], [("prediction", "pred")], tree=TREE_A
    )
    out = load(node, tmp_path, "protobuf").transform(doubles_frame(f=X))
    expected = []
    for row in X.tolist():
        counts = _leaf(TREE_A, row)
        p = [c / sum(counts) for c in counts]
        expected.append(float(np.argmax([p[0] / 0.9, p[1] / 0.1])))
    np.testing.assert_array_equal(out.column("pred"), expected)


def test_regression_ensembles_average_or_weight_their_trees(tmp_path: Path) -> None:
    rows = X.tolist()
    a = np.array([_leaf(REG_A, r)[0] for r in rows])
    b = np.array([_leaf(REG_B, r)[0] for r in rows])
    rf = _ensemble(
        "random_forest_regression",
        [REG_A, REG_B],
        {"tree_weights": ("double_list", [1.0, 1.0])},
        [("prediction", "y")],
    )
    out = load(rf, tmp_path, "json").transform(doubles_frame(f=X))
    np.testing.assert_allclose(out.column("y"), (a + b) / 2, rtol=1e-12)
    gbt = _ensemble(
        "gbt_regression", [REG_A, REG_B], {"tree_weights": ("double_list", [1.0, 0.1])}, [("prediction", "y")]
    )
    out = load(gbt, tmp_path, "protobuf").transform(doubles_frame(f=X))
    np.testing.assert_allclose(out.column("y"), a + 0.1 * b, rtol=1e-12)


def test_gbt_classifier_uses_logistic_loss_on_the_margin(tmp_path: Path) -> None:
    node = _ensemble(
        "gbt_classifier",
        [REG_A, REG_B],
        {"num_classes": ("long", 2), "tree_weights": ("double_list", [0.5, 0.5])},
        OUTS,
    )
    out = load(node, tmp_path).transform(doubles_frame(f=X))
    margin = np.array([0.5 * _leaf(REG_A, r)[0] + 0.5 * _leaf(REG_B, r)[0] for r in X.tolist()])
    p1 = np.array([1.0 - 1.0 / (1.0 + math.exp(2.0 * m)) for m in margin])
    np.testing.assert_allclose(out.column("raw"), np.c_[-margin, margin], rtol=1e-12)
    np.testing.assert_allclose(out.column("prob"), np.c_[1.0 - p1, p1], rtol=1e-12)
    np.testing.assert_array_equal(out.column("pred"), (margin > 0).astype(float))


def test_warm_load_decodes_no_tree_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = _ensemble("random_forest_regression", [REG_A, REG_B], {}, [("prediction", "y")])
    cold = load(node, tmp_path, "json", zipped=True).transform(doubles_frame(f=X)).column("y")

    def no_decoding(data: bytes, where: str) -> None:
        raise AssertionError(f"{where} was decoded on a warm load")

    import scorer.trees.json_decoder

    monkeypatch.setattr(scorer.trees.json_decoder, "decode_tree_json", no_decoding)
    warm = load(node, tmp_path, "json", zipped=True).transform(doubles_frame(f=X)).column("y")
    np.testing.assert_array_equal(warm, cold)
    np.testing.assert_allclose(cold, [(_leaf(REG_A, r)[0] + _leaf(REG_B, r)[0]) / 2 for r in X.tolist()])


def test_trees_saved_as_nodes_files_by_older_mleap_load(tmp_path: Path) -> None:
    from scorer.bundle import load_bundle
    from scorer.trees import ForestCache
    from tests.unit.bundle_files import bundle_files, write_files

    node = _ensemble("random_forest_regression", [REG_A, REG_B], {}, [("prediction", "y")])
    files = {k.replace("/tree.pb", "/nodes.pb"): v for k, v in bundle_files(node, "protobuf").items()}
    bundle = load_bundle(write_files(files, tmp_path, zipped=True), cache=ForestCache(tmp_path / "cache"))
    expected = [(_leaf(REG_A, r)[0] + _leaf(REG_B, r)[0]) / 2 for r in X.tolist()]
    np.testing.assert_allclose(bundle.transform(doubles_frame(f=X)).column("y"), expected, rtol=1e-12)


def test_normalised_rows_divide_by_their_sum_and_leave_zero_rows_alone() -> None:
    from scorer.bundle.ops.classify import normalize_rows

    raw = np.array([[3.0, 1.0], [0.0, 0.0], [np.nan, 1.0], [2.0, -2.0]])
    expected = np.array([[0.75, 0.25], [0.0, 0.0], [np.nan, np.nan], [2.0, -2.0]])
    np.testing.assert_array_equal(normalize_rows(raw), expected)
    np.testing.assert_array_equal(normalize_rows(raw[:1]), expected[:1])  # no zero sum: the plain division
    np.testing.assert_array_equal(normalize_rows(raw[2:3]), expected[2:3])
    assert raw[0, 0] == 3.0  # the input is not changed


def test_one_row_and_many_rows_normalise_and_pick_classes_alike() -> None:
    from scorer.bundle.ops.classify import argmax_with_thresholds, normalize_rows

    rng = np.random.default_rng(11)
    raw = rng.choice([0.0, 1.0, 2.0, 0.5, -1.0, np.nan, np.inf], size=(400, 3))
    raw[:20] = 0.0  # rows summing to zero
    raw[20:40, 1] = raw[20:40, 0]  # ties
    batch = normalize_rows(raw)
    for i in range(raw.shape[0]):
        one = normalize_rows(raw[i : i + 1])
        np.testing.assert_array_equal(one, batch[i : i + 1])
        np.testing.assert_array_equal(argmax_with_thresholds(one, None), np.argmax(one, axis=1).astype(float))
    np.testing.assert_array_equal(argmax_with_thresholds(batch, None), np.argmax(batch, axis=1).astype(float))


def test_sums_add_a_rows_values_left_to_right_as_mleap_does() -> None:
    from scorer.bundle.ops.classify import normalize_rows

    raw = np.array([[1e16, 1.0, 1.0]])  # left to right, each 1 is lost; summed in pairs, they are not
    expected = raw / 1e16
    np.testing.assert_array_equal(normalize_rows(raw), expected)
    np.testing.assert_array_equal(normalize_rows(np.repeat(raw, 3, axis=0)), np.repeat(expected, 3, axis=0))
