"""Turn pre-order node lists into linked trees: the step both tree decoders share."""

from __future__ import annotations

import numpy as np
from numba import njit

from scorer.trees.errors import TreeFormatError
from scorer.trees.tree import Tree

# Node kinds as the decoders record them.
LEAF = 0
CONTINUOUS = 1
CATEGORICAL = 2

# Status codes of link_preorder; the node it reports is in the second slot of the result.
LINK_OK = 0
LINK_NODES_AFTER_END = 1
LINK_ENDS_EARLY = 2

# Feature indices must fit the compiled form's int32 slots.
MAX_FEATURE_INDEX = int(np.iinfo(np.int32).max)


@njit(cache=True, nogil=True)
def link_preorder(kind: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:  # pragma: no cover - numba
    """Children of each node of a pre-order listing, plus (status, node) of the first structural fault."""
    n = kind.shape[0]
    left = np.full(n, -1, dtype=np.int32)
    right = np.full(n, -1, dtype=np.int32)
    pending = np.empty(n, dtype=np.int32)  # internal nodes still waiting for their right child
    top = 0
    for i in range(n):
        if i > 0:
            if kind[i - 1] != LEAF:
                left[i - 1] = i
            else:
                if top == 0:
                    return left, right, LINK_NODES_AFTER_END, i
                top -= 1
                right[pending[top]] = i
        if kind[i] != LEAF:
            pending[top] = i
            top += 1
    if top > 0:
        return left, right, LINK_ENDS_EARLY, int(pending[top - 1])
    return left, right, LINK_OK, -1


def assemble_tree(
    where: str,
    kind: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    value_start: np.ndarray,
    value_count: np.ndarray,
    flat_values: np.ndarray,
    categorical: dict[int, tuple[frozenset[float], bool]],
) -> Tree:
    """Validate decoded pre-order nodes and link them into a `Tree`; faults name `where` and the node."""
    n = int(kind.shape[0])
    if n == 0:
        raise TreeFormatError(f"{where}: the tree has no nodes")
    internal = kind != LEAF
    bad = np.flatnonzero(internal & (feature < 0))
    if bad.size:
        raise TreeFormatError(f"{where}: node {bad[0]}: negative feature index {feature[bad[0]]}")
    bad = np.flatnonzero(internal & (feature > MAX_FEATURE_INDEX))
    if bad.size:
        raise TreeFormatError(f"{where}: node {bad[0]}: feature index {feature[bad[0]]} is too large")
    bad = np.flatnonzero((kind == CONTINUOUS) & ~np.isfinite(threshold))
    if bad.size:
        raise TreeFormatError(f"{where}: node {bad[0]}: threshold {threshold[bad[0]]} is not finite")
    left, right, status, node = link_preorder(np.ascontiguousarray(kind, dtype=np.int8))
    if status == LINK_NODES_AFTER_END:
        raise TreeFormatError(f"{where}: node {node}: nodes follow a tree that is already complete")
    if status == LINK_ENDS_EARLY:
        raise TreeFormatError(f"{where}: the tree ends after node {n - 1} but node {node} has no right child")
    values = leaf_matrix(where, kind, value_start, value_count, flat_values)
    return Tree(
        feature=np.where(internal, feature, -1).astype(np.int32),
        threshold=np.where(kind == CONTINUOUS, threshold, 0.0).astype(np.float64),
        left=left,
        right=right,
        values=values,
        categorical=categorical,
    )


def leaf_matrix(
    where: str, kind: np.ndarray, value_start: np.ndarray, value_count: np.ndarray, flat_values: np.ndarray
) -> np.ndarray:
    """Leaf values as a dense float64 [n, k] matrix, zeros at internal nodes; all leaves need k values."""
    leaves = np.flatnonzero(kind == LEAF)
    if leaves.size == 0:  # unreachable for a linked tree, kept so the indexing below is safe
        raise TreeFormatError(f"{where}: the tree has no leaves")
    counts = value_count[leaves]
    k = int(counts[0])
    if k == 0:
        raise TreeFormatError(f"{where}: node {leaves[0]}: leaf has no values")
    ragged = np.flatnonzero(counts != k)
    if ragged.size:
        node = leaves[ragged[0]]
        raise TreeFormatError(
            f"{where}: node {node}: leaf has {value_count[node]} values but node {leaves[0]} has {k}"
        )
    values = np.zeros((kind.shape[0], k), dtype=np.float64)
    _fill_leaf_values(kind, value_start, flat_values, values)
    return values


@njit(cache=True, nogil=True)
def _fill_leaf_values(kind, value_start, flat_values, values):  # type: ignore[no-untyped-def]  # pragma: no cover
    """values[i] = the k values from value_start[i] on, for each leaf i (numpy gathers it in 4x the time)."""
    k = values.shape[1]
    for i in range(kind.shape[0]):
        if kind[i] == LEAF:
            start = value_start[i]
            for c in range(k):
                values[i, c] = flat_values[start + c]
