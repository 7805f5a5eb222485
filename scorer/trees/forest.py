"""Compile trees into one packed, cache-friendly forest and score rows against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scorer.trees._walk import Forest
from scorer.trees.errors import ForestInputError, TreeFormatError
from scorer.trees.tree import Tree

# Trees walked together per row, each next node prefetched (scorer/trees/_walk.c). On the seed forest,
# against 64 lanes: 32 lanes 1.1-1.2x slower per row and per batch, 48 and 96 within 3%, all 250 about 6%
# slower.
LOCKSTEP_TREES = 64


@dataclass(frozen=True)
class ForestArrays:
    """The packed form of a forest: everything `CompiledForest` needs, and what the cache stores."""

    nodes: np.ndarray  # int32 [n, 4]: see scorer/trees/_walk.c for the layout
    roots: np.ndarray  # int64 [t]: index of each tree's root in `nodes`
    values: np.ndarray  # float64 [l, k]: distinct weighted leaf-value rows
    cat_meta: np.ndarray  # int64 [c, 4]: feature, is_left, start, end into `cat_values`
    cat_values: np.ndarray  # float64 [m]: categories of every categorical split
    shape: np.ndarray  # int64 [2]: n_features, max_depth

    def named(self) -> dict[str, np.ndarray]:
        """The arrays by file name, for storing."""
        return {
            "nodes": self.nodes,
            "roots": self.roots,
            "values": self.values,
            "cat_meta": self.cat_meta,
            "cat_values": self.cat_values,
            "shape": self.shape,
        }


class CompiledForest:
    """A forest ready to score: `sum_leaves(X)` = Σ_t weights[t] * values_t[leaf_t(x)] per row.

    `lanes` is how many trees one row walks in lockstep; the arrays may be memory-mapped read-only.
    Raises `TreeFormatError` for arrays that do not form a forest (every node is checked once, here).
    """

    def __init__(self, arrays: ForestArrays, lanes: int = LOCKSTEP_TREES) -> None:
        self.arrays = arrays
        self.lanes = lanes
        self.n_features = int(arrays.shape[0])
        self.max_depth = int(arrays.shape[1])
        self.n_trees = int(arrays.roots.shape[0])
        self.n_nodes = int(arrays.nodes.shape[0])
        self.n_outputs = int(arrays.values.shape[1])
        for array in arrays.named().values():
            array.flags.writeable = False  # checked once below: the kernel relies on them not changing
        try:
            self._kernel = Forest(
                arrays.nodes,
                arrays.roots,
                arrays.values,
                arrays.cat_meta,
                arrays.cat_values,
                self.n_features,
                lanes,
            )
        except ValueError as e:
            raise TreeFormatError(f"the packed forest is inconsistent: {e}") from None

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed arrays."""
        return sum(int(a.nbytes) for a in self.arrays.named().values())

    def sum_leaves(self, rows: np.ndarray) -> np.ndarray:
        """Weighted sum of each row's leaf values over all trees: float64 [n, f] -> float64 [n, k].

        Runs without the GIL, so threads score in parallel."""
        try:
            # the usual input (float64, C-ordered, wide enough) goes straight in: the kernel checks it
            out = np.empty((len(rows), self.n_outputs), dtype=np.float64)
            self._kernel.sum_leaves(rows, out)
            return out
        except (TypeError, ValueError):
            pass
        if rows.ndim != 2 or rows.shape[1] < self.n_features:
            raise ForestInputError(
                f"rows must be a 2-d array with at least {self.n_features} features, got shape {rows.shape}"
            )
        out = np.empty((rows.shape[0], self.n_outputs), dtype=np.float64)
        self._kernel.sum_leaves(np.ascontiguousarray(rows, dtype=np.float64), out)
        return out


def compile_forest(trees: Sequence[Tree], weights: np.ndarray | None) -> CompiledForest:
    """Pack `trees` (scaled by `weights`, None = all 1) into a `CompiledForest`."""
    return CompiledForest(pack_forest(trees, weights))


def pack_forest(trees: Sequence[Tree], weights: np.ndarray | None) -> ForestArrays:
    """The packed arrays of a forest; raises `TreeFormatError` for trees that cannot be packed."""
    from scorer.trees.packing import pack_tree, preorder_permutation, renumber_leaves  # numba: compiling only

    if len(trees) == 0:
        raise TreeFormatError("a forest needs at least one tree")
    k = trees[0].n_values
    if weights is None:
        weights = np.ones(len(trees), dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(trees),):
        raise TreeFormatError(f"weights have shape {weights.shape}, expected ({len(trees)},)")
    total = sum(tree.n_nodes for tree in trees)
    if total >= np.iinfo(np.int32).max:
        raise TreeFormatError(f"the forest has {total} nodes, more than a packed forest can index")
    nodes = np.zeros((total, 4), dtype=np.int32)
    floats = nodes.view(np.float64)
    roots = np.empty(len(trees), dtype=np.int64)
    leaf_rows: list[np.ndarray] = []
    cat_meta: list[tuple[int, int, int, int]] = []
    cat_values: list[float] = []
    n_features = 0
    max_depth = 0
    offset = 0
    n_leaves = 0
    for t, tree in enumerate(trees):
        if tree.n_values != k:
            raise TreeFormatError(f"tree {t}: leaves have {tree.n_values} values, tree 0 has {k}")
        order, depth, complete = preorder_permutation(tree.left.astype(np.int64), tree.right.astype(np.int64))
        if not complete:
            raise TreeFormatError(f"tree {t}: children do not form a tree rooted at node 0")
        position, leaves, max_feature, valid = pack_tree(
            order, tree.feature, tree.threshold, tree.left, tree.right, nodes, floats, offset, n_leaves
        )
        if not valid:
            raise TreeFormatError(f"tree {t}: an internal node has a negative feature index")
        leaf_rows.append(weights[t] * tree.values[leaves])
        for node, (categories, is_left) in tree.categorical.items():
            start = len(cat_values)
            cat_values.extend(sorted(categories))
            cat_meta.append((int(tree.feature[node]), int(is_left), start, len(cat_values)))
            nodes[position[node], 0] = -2 - (len(cat_meta) - 1)
        n_features = max(n_features, int(max_feature) + 1)
        max_depth = max(max_depth, int(depth.max()))
        roots[t] = offset
        offset += tree.n_nodes
        n_leaves += leaves.size
    # identical leaf rows (pure class counts, repeated regression values) are stored once
    values, inverse = distinct_rows(np.concatenate(leaf_rows))
    renumber_leaves(nodes, inverse)
    return ForestArrays(
        nodes=nodes,
        roots=roots,
        values=np.ascontiguousarray(values, dtype=np.float64),
        cat_meta=np.asarray(cat_meta, dtype=np.int64).reshape(-1, 4),
        cat_values=np.asarray(cat_values, dtype=np.float64),
        shape=np.array([n_features, max_depth], dtype=np.int64),
    )


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows (bit for bit) of a float64 matrix and each row's index among them."""
    from scorer.trees.packing import distinct_row_ids, row_digests  # numba, as in pack_forest

    rows = np.ascontiguousarray(rows, dtype=np.float64)
    bits = rows.view(np.uint64)
    # leaves mostly repeat a few rows (pure class counts): one pass with a small hash table
    found = distinct_row_ids(bits, max(1024, rows.shape[0] // 16))
    if found is not None:
        first, inverse = found
        return rows[first], inverse
    # mostly distinct (regression values): sorting row digests is faster than a table of them all
    _, first, inverse = np.unique(row_digests(bits), return_index=True, return_inverse=True)
    distinct = rows[first]
    if not np.array_equal(distinct.view(np.uint64)[inverse], bits):
        return rows, np.arange(rows.shape[0])  # a digest collision: keep every row
    return distinct, inverse.reshape(-1)
