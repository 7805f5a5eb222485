"""The fast tree writer: byte-identical to the protobuf library, pre-order from any sklearn node order."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeRegressor

from protos.ml.bundle import dtree_pb2
from rtscore.errors import InvalidArgument
from scorer.export.treewire import encode_tree_json, encode_tree_pb, tree_from_sklearn
from scorer.trees.tree import Tree


def _reference_pb(tree: Tree) -> bytes:
    """tree.pb as MLeap writes it: one protobuf `Node` per node, each after a big-endian int32 size."""
    out = bytearray()
    for i in range(tree.n_nodes):
        node = dtree_pb2.Node()
        if tree.left[i] < 0:
            node.leaf.values.extend(tree.values[i].tolist())
        else:
            node.internal.split.continuous.feature_index = int(tree.feature[i])
            node.internal.split.continuous.threshold = float(tree.threshold[i])
        data = node.SerializeToString()
        out += struct.pack(">i", len(data)) + data
    return bytes(out)


def _random_tree(depth_seed: int, n_values: int, features: int) -> Tree:
    """A random pre-order tree with random features, thresholds (zeros included) and leaf vectors."""
    rng = np.random.default_rng(depth_seed)
    feature, threshold, left, right, values = [], [], [], [], []

    def grow(depth: int) -> int:
        idx = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        values.append(rng.normal(size=n_values) * rng.choice([0.0, 1.0, 1e300]))
        if depth < 6 and rng.random() < 0.7:
            feature[idx] = int(rng.choice([0, 1, 127, 128, 300, features]))
            threshold[idx] = float(rng.choice([0.0, -0.0, rng.normal(), 1e-310]))
            values[idx] = np.zeros(n_values)
            left[idx] = grow(depth + 1)
            right[idx] = grow(depth + 1)
        return idx

    grow(0)
    return Tree(
        feature=np.array(feature, dtype=np.int32),
        threshold=np.array(threshold),
        left=np.array(left, dtype=np.int32),
        right=np.array(right, dtype=np.int32),
        values=np.array(values).reshape(len(values), n_values),
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_values=st.integers(0, 20), features=st.integers(1, 100_000))
def test_tree_pb_bytes_equal_protobuf_library(seed: int, n_values: int, features: int) -> None:
    tree = _random_tree(seed, n_values, features)
    assert encode_tree_pb(tree) == _reference_pb(tree)


def test_tree_pb_of_fitted_forest_equals_protobuf_library() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(800, 6))
    y = rng.integers(0, 3, size=800)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    for est in forest.estimators_:
        tree = tree_from_sklearn(est.tree_, est.tree_.value[:, 0, :])
        assert encode_tree_pb(tree) == _reference_pb(tree)


def _route(tree: Tree, row: np.ndarray) -> int:
    node = 0
    while tree.left[node] >= 0:
        node = tree.left[node] if row[tree.feature[node]] <= tree.threshold[node] else tree.right[node]
    return int(node)


def test_best_first_trees_are_reindexed_into_preorder_with_same_predictions() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 4))
    y = x[:, 0] * 3 + rng.normal(size=600)
    # max_leaf_nodes grows best-first, so sklearn's node ids are not pre-order.
    est = DecisionTreeRegressor(max_leaf_nodes=40, random_state=0).fit(x, y)
    sk_left = est.tree_.children_left
    assert not np.all(sk_left[sk_left >= 0] == np.flatnonzero(sk_left >= 0) + 1)
    tree = tree_from_sklearn(est.tree_, est.tree_.value[:, 0, :1])
    internal = np.flatnonzero(tree.left >= 0)
    assert np.all(tree.left[internal] == internal + 1)
    leaves = np.array([_route(tree, row) for row in x[:200]])
    np.testing.assert_array_equal(tree.values[leaves, 0], est.predict(x[:200]))


def test_tree_json_has_one_mleap_node_per_line_in_preorder() -> None:
    tree = _random_tree(7, 2, 10)
    lines = encode_tree_json(tree).decode().splitlines()
    assert len(lines) == tree.n_nodes
    for i, line in enumerate(lines):
        node = json.loads(line)
        if tree.left[i] < 0:
            assert node == {"type": "leaf", "values": tree.values[i].tolist()}
        else:
            split = node["split"]
            assert node["type"] == "internal"
            assert split == {
                "type": "continuous",
                "featureIndex": int(tree.feature[i]),
                "threshold": float(tree.threshold[i]),
            }


def test_nan_threshold_is_refused() -> None:
    tree = Tree(
        feature=np.array([2, -1, -1], dtype=np.int32),
        threshold=np.array([np.nan, 0.0, 0.0]),
        left=np.array([1, -1, -1], dtype=np.int32),
        right=np.array([2, -1, -1], dtype=np.int32),
        values=np.zeros((3, 1)),
    )
    with pytest.raises(InvalidArgument, match="NaN or infinite"):
        encode_tree_pb(tree)
