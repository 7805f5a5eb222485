"""The compiled forest kernel against a plain-Python walk of the same trees."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from scorer.trees import ForestInputError, Tree, TreeFormatError, compile_forest
from scorer.trees.forest import CompiledForest, ForestArrays, distinct_rows

GRID = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])  # thresholds and inputs share it, so ties happen


def random_tree(rng: np.random.Generator, n_features: int, k: int, max_depth: int) -> Tree:
    """A random pre-order tree with continuous and categorical splits."""
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    values: list[np.ndarray] = []
    categorical: dict[int, tuple[frozenset[float], bool]] = {}

    def grow(depth: int) -> int:
        node = len(feature)
        feature.append(-1)
        threshold.append(0.0)
        left.append(-1)
        right.append(-1)
        values.append(np.zeros(k))
        if depth >= max_depth or (depth > 0 and rng.random() < 0.3):
            values[node] = rng.normal(size=k)
            return node
        feature[node] = int(rng.integers(n_features))
        if rng.random() < 0.15:
            cats = frozenset(float(c) for c in rng.choice(GRID, size=int(rng.integers(1, 4)), replace=False))
            categorical[node] = (cats, bool(rng.random() < 0.5))
        else:
            threshold[node] = float(rng.choice(GRID))
        left[node] = grow(depth + 1)
        right[node] = grow(depth + 1)
        return node

    grow(0)
    return Tree(
        feature=np.array(feature, dtype=np.int32),
        threshold=np.array(threshold),
        left=np.array(left, dtype=np.int32),
        right=np.array(right, dtype=np.int32),
        values=np.array(values),
        categorical=categorical,
    )


def random_rows(rng: np.random.Generator, n: int, n_features: int) -> np.ndarray:
    """Rows drawn from the threshold grid, with values between grid points and some NaN."""
    rows = rng.choice(GRID, size=(n, n_features)) + rng.choice([0.0, 0.25], size=(n, n_features))
    rows[rng.random(size=rows.shape) < 0.1] = np.nan
    return rows


def reference_sum(trees: list[Tree], weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Σ_t weights[t] * values_t[leaf_t(x)] by walking each tree node by node."""
    out = np.zeros((rows.shape[0], trees[0].n_values))
    for r, x in enumerate(rows):
        for tree, weight in zip(trees, weights, strict=True):
            node = 0
            while tree.left[node] >= 0:
                value = x[tree.feature[node]]
                if node in tree.categorical:
                    categories, is_left = tree.categorical[node]
                    go_left = (value in categories) == is_left
                else:
                    go_left = bool(value <= tree.threshold[node])
                node = tree.left[node] if go_left else tree.right[node]
            out[r] += weight * tree.values[node]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_reference_walk_on_random_trees(seed: int) -> None:
    rng = np.random.default_rng(seed)
    trees = [random_tree(rng, n_features=5, k=3, max_depth=8) for _ in range(45)]
    weights = rng.normal(size=len(trees))
    rows = random_rows(rng, 300, 5)
    forest = compile_forest(trees, weights)
    np.testing.assert_array_equal(forest.sum_leaves(rows), reference_sum(trees, weights, rows))


def test_nan_goes_right_and_ties_go_left() -> None:
    tree = Tree(
        feature=np.array([0, -1, -1], dtype=np.int32),
        threshold=np.array([0.5, 0.0, 0.0]),
        left=np.array([1, -1, -1], dtype=np.int32),
        right=np.array([2, -1, -1], dtype=np.int32),
        values=np.array([[0.0], [10.0], [20.0]]),
    )
    forest = compile_forest([tree], None)
    rows = np.array([[0.5], [np.nan], [np.nextafter(0.5, 1.0)], [-np.inf], [np.inf]])
    np.testing.assert_array_equal(forest.sum_leaves(rows)[:, 0], [10.0, 20.0, 20.0, 10.0, 20.0])


def test_categorical_split_honours_is_left() -> None:
    def stump(is_left: bool) -> Tree:
        return Tree(
            feature=np.array([1, -1, -1], dtype=np.int32),
            threshold=np.zeros(3),
            left=np.array([1, -1, -1], dtype=np.int32),
            right=np.array([2, -1, -1], dtype=np.int32),
            values=np.array([[0.0], [1.0], [2.0]]),
            categorical={0: (frozenset({1.0, 3.0}), is_left)},
        )

    rows = np.array([[9.0, 1.0], [9.0, 2.0], [9.0, 3.0], [9.0, np.nan]])
    np.testing.assert_array_equal(compile_forest([stump(True)], None).sum_leaves(rows)[:, 0], [1, 2, 1, 2])
    np.testing.assert_array_equal(compile_forest([stump(False)], None).sum_leaves(rows)[:, 0], [2, 1, 2, 1])


def test_trees_not_in_preorder_are_renumbered() -> None:
    # root 0 splits into a leaf stored last and an internal node stored first
    tree = Tree(
        feature=np.array([0, 1, -1, -1, -1], dtype=np.int32),
        threshold=np.array([0.0, 0.0, 0.0, 0.0, 0.0]),
        left=np.array([4, 2, -1, -1, -1], dtype=np.int32),
        right=np.array([1, 3, -1, -1, -1], dtype=np.int32),
        values=np.array([[0.0], [0.0], [1.0], [2.0], [3.0]]),
    )
    rows = np.array([[-1.0, 0.0], [1.0, -1.0], [1.0, 1.0]])
    forest = compile_forest([tree], None)
    np.testing.assert_array_equal(forest.sum_leaves(rows), reference_sum([tree], np.ones(1), rows))
    assert (forest.n_trees, forest.n_nodes, forest.max_depth, forest.n_features) == (1, 5, 2, 2)


def test_cyclic_children_are_rejected() -> None:
    tree = Tree(
        feature=np.array([0, 0], dtype=np.int32),
        threshold=np.zeros(2),
        left=np.array([1, 0], dtype=np.int32),
        right=np.array([1, 0], dtype=np.int32),
        values=np.zeros((2, 1)),
    )
    with pytest.raises(TreeFormatError, match="tree 0"):
        compile_forest([tree], None)


def test_internal_nodes_with_negative_features_are_rejected() -> None:
    tree = Tree(
        feature=np.array([-3, -1, -1], dtype=np.int32),
        threshold=np.zeros(3),
        left=np.array([1, -1, -1], dtype=np.int32),
        right=np.array([2, -1, -1], dtype=np.int32),
        values=np.zeros((3, 1)),
    )
    with pytest.raises(TreeFormatError, match="tree 1: an internal node has a negative feature index"):
        compile_forest([random_tree(np.random.default_rng(9), 2, 1, 3), tree], None)


def test_rows_with_too_few_features_are_rejected() -> None:
    rng = np.random.default_rng(3)
    forest = compile_forest([random_tree(rng, n_features=4, k=1, max_depth=4)], None)
    with pytest.raises(ForestInputError, match="at least"):
        forest.sum_leaves(np.zeros((2, forest.n_features - 1)))
    with pytest.raises(ForestInputError):
        forest.sum_leaves(np.zeros(forest.n_features))
    with pytest.raises(ForestInputError):
        forest.sum_leaves(np.float64(1.0))


def test_mismatched_weights_are_rejected() -> None:
    rng = np.random.default_rng(4)
    trees = [random_tree(rng, n_features=2, k=1, max_depth=3) for _ in range(3)]
    with pytest.raises(TreeFormatError, match="weights"):
        compile_forest(trees, np.ones(2))


def test_kernel_releases_the_gil_and_threads_agree() -> None:
    rng = np.random.default_rng(5)
    trees = [random_tree(rng, n_features=6, k=2, max_depth=10) for _ in range(64)]
    forest = compile_forest(trees, None)
    rows = random_rows(rng, 20_000, 6)
    expected = forest.sum_leaves(rows)
    results: dict[int, np.ndarray] = {}

    def score(slot: int) -> None:
        results[slot] = forest.sum_leaves(rows)

    workers = [threading.Thread(target=score, args=(slot,)) for slot in range(2)]
    for worker in workers:
        worker.start()
    # the main thread keeps running Python code only if the kernels do not hold the GIL
    spins = 0
    while any(worker.is_alive() for worker in workers):
        spins += 1
    for worker in workers:
        worker.join()
    np.testing.assert_array_equal(results[0], expected)
    np.testing.assert_array_equal(results[1], expected)
    assert spins > 1000


def test_leaf_rows_are_stored_once_and_bit_for_bit() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [np.nan, 1.0], [np.nan, 1.0], [1.0, -0.0]])
    distinct, inverse = distinct_rows(rows)
    assert distinct.shape == (4, 2)
    np.testing.assert_array_equal(distinct[inverse].view(np.uint64), rows.view(np.uint64))


@pytest.mark.parametrize("n_distinct", [3, 5000], ids=["few-hash-table", "many-sorted"])
def test_distinct_rows_are_exact_whichever_way_they_are_found(n_distinct: int) -> None:
    rng = np.random.default_rng(5)
    pool = rng.normal(size=(n_distinct, 2))
    rows = pool[rng.integers(0, n_distinct, size=20_000)]
    distinct, inverse = distinct_rows(rows)
    assert distinct.shape[0] == np.unique(rows, axis=0).shape[0]
    np.testing.assert_array_equal(distinct[inverse].view(np.uint64), rows.view(np.uint64))


@pytest.mark.parametrize("lanes", [1, 3, 64, 256])
def test_any_number_of_lanes_gives_the_same_sums(lanes: int) -> None:
    rng = np.random.default_rng(6)
    trees = [random_tree(rng, n_features=4, k=2, max_depth=7) for _ in range(40)]
    rows = random_rows(rng, 50, 4)
    packed = compile_forest(trees, None).arrays
    np.testing.assert_array_equal(
        CompiledForest(packed, lanes=lanes).sum_leaves(rows), reference_sum(trees, np.ones(40), rows)
    )


@pytest.mark.parametrize("lanes", [0, 257])
def test_lane_counts_outside_the_kernel_are_refused(lanes: int) -> None:
    packed = compile_forest([random_tree(np.random.default_rng(7), 2, 1, 3)], None).arrays
    with pytest.raises(TreeFormatError, match="lanes"):
        CompiledForest(packed, lanes=lanes)


def test_rows_of_other_types_and_layouts_score_as_float64() -> None:
    rng = np.random.default_rng(8)
    trees = [random_tree(rng, n_features=3, k=1, max_depth=5) for _ in range(5)]
    forest = compile_forest(trees, None)
    rows = random_rows(rng, 20, 6)
    expected = forest.sum_leaves(np.ascontiguousarray(rows[:, ::2]))
    np.testing.assert_array_equal(forest.sum_leaves(rows[:, ::2]), expected)  # strided
    narrow = rows[:, :3].astype(np.float32)
    np.testing.assert_array_equal(forest.sum_leaves(narrow), forest.sum_leaves(narrow.astype(np.float64)))
    assert forest.sum_leaves(np.zeros((0, 3))).shape == (0, 1)


def _damaged(arrays: ForestArrays, **changes: np.ndarray) -> ForestArrays:
    named = {name: np.array(a, copy=True) for name, a in arrays.named().items()}
    named.update(changes)
    return ForestArrays(**named)


def _stump_with_category() -> ForestArrays:
    tree = Tree(
        feature=np.array([1, 0, -1, -1, -1], dtype=np.int32),
        threshold=np.array([0.0, 0.5, 0.0, 0.0, 0.0]),
        left=np.array([1, 2, -1, -1, -1], dtype=np.int32),
        right=np.array([4, 3, -1, -1, -1], dtype=np.int32),
        values=np.array([[0.0], [0.0], [1.0], [2.0], [3.0]]),
        categorical={0: (frozenset({1.0}), True)},
    )
    return compile_forest([tree], None).arrays


def _set(array: np.ndarray, at: tuple[int, ...], value: float) -> np.ndarray:
    changed = np.array(array, copy=True)
    changed[at] = value
    return changed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {"nodes": _set(a.nodes, (1, 1), 1)}, "node 1: right child 1"),  # points back at itself
        (lambda a: {"nodes": _set(a.nodes, (1, 1), 5)}, "node 1: right child 5"),  # past the last node
        (lambda a: {"nodes": _set(a.nodes, (2, 1), 3)}, "node 2: leaf row 3"),  # 3 distinct leaf rows
        (lambda a: {"nodes": _set(a.nodes, (1, 0), 2)}, "node 1: split 2"),  # 2 features
        (lambda a: {"nodes": _set(a.nodes, (0, 0), -3)}, "node 0: split -3"),  # categorical split 1 of 1
        (lambda a: {"roots": np.array([5])}, "tree 0: root 5"),
        (lambda a: {"cat_meta": _set(a.cat_meta, (0, 3), 2)}, "categorical split 0"),  # 1 category stored
        (lambda a: {"cat_meta": _set(a.cat_meta, (0, 0), 2)}, "categorical split 0"),
        (lambda a: {"nodes": a.nodes.astype(np.int64)}, "nodes must be a 2-d array of int32"),
        (lambda a: {"values": a.values.astype(np.float32)}, "values must be a 2-d array of float64"),
    ],
)
def test_damaged_packed_forests_are_refused_before_scoring(change: Any, message: str) -> None:
    arrays = _stump_with_category()
    rows = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 2.0]])
    np.testing.assert_array_equal(CompiledForest(arrays).sum_leaves(rows)[:, 0], [1.0, 2.0, 3.0])
    with pytest.raises(TreeFormatError, match=message):
        CompiledForest(_damaged(arrays, **change(arrays)))


def test_a_compiled_forest_cannot_be_changed_under_the_kernel() -> None:
    forest = compile_forest([random_tree(np.random.default_rng(10), 2, 1, 3)], None)
    with pytest.raises(ValueError, match="read-only"):
        forest.arrays.nodes[0, 1] = 10**9


def test_an_uninitialised_kernel_refuses_to_score() -> None:
    from scorer.trees._walk import Forest

    with pytest.raises(RuntimeError, match="not initialised"):
        Forest.__new__(Forest).sum_leaves(np.zeros((1, 1)), np.zeros((1, 1)))
