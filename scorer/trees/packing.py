"""Numba kernels used when packing a forest (scoring is the C kernel in scorer.trees._walk).

Imported only to compile a forest: a process that scores from the compiled cache never starts numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from scorer.trees._walk import LEAF_MARK


@njit(cache=True, nogil=True)
def preorder_permutation(left, right):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Node ids in pre-order from root 0 and each one's depth; fewer than n ids if nodes are unreachable."""
    n = left.shape[0]
    order = np.empty(n, dtype=np.int64)
    depth = np.empty(n, dtype=np.int64)
    stack = np.empty(n + 1, dtype=np.int64)
    stack_depth = np.empty(n + 1, dtype=np.int64)
    visited = np.zeros(n, dtype=np.bool_)
    top = 1
    stack[0] = 0
    stack_depth[0] = 0
    count = 0
    while top > 0:
        top -= 1
        node = stack[top]
        if node < 0 or node >= n or visited[node] or count >= n:
            return order[:count], depth[:count], False
        visited[node] = True
        order[count] = node
        depth[count] = stack_depth[top]
        count += 1
        if left[node] >= 0 or right[node] >= 0:
            if top + 2 > n + 1:
                return order[:count], depth[:count], False
            stack[top] = right[node]
            stack_depth[top] = depth[count - 1] + 1
            stack[top + 1] = left[node]
            stack_depth[top + 1] = depth[count - 1] + 1
            top += 2
    return order[:count], depth[:count], count == n


@njit(cache=True, nogil=True)
def pack_tree(order, feature, threshold, left, right, nodes, floats, offset, first_leaf):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Write one tree, its nodes taken in pre-order `order`, into rows offset.. of the packed layout.

    Returns each node's packed position, the tree's leaves (node ids, in packed order; leaf j gets row
    first_leaf + j of the leaf-value table), its largest split feature (-1 if none), and False if an
    internal node has a negative feature index."""
    n = order.shape[0]
    position = np.empty(n, dtype=np.int64)
    for p in range(n):
        position[order[p]] = offset + p
    leaves = np.empty(n, dtype=np.int64)
    n_leaves = 0
    max_feature = -1
    for p in range(n):
        i = order[p]
        at = offset + p
        if left[i] < 0:
            nodes[at, 0] = LEAF_MARK
            nodes[at, 1] = first_leaf + n_leaves
            floats[at, 1] = 0.0
            leaves[n_leaves] = i
            n_leaves += 1
        else:
            f = feature[i]
            if f < 0:
                return position, leaves[:n_leaves], max_feature, False
            nodes[at, 0] = f
            nodes[at, 1] = position[right[i]]
            floats[at, 1] = threshold[i]
            max_feature = max(max_feature, f)
    return position, leaves[:n_leaves], max_feature, True


@njit(cache=True, nogil=True)
def renumber_leaves(nodes, new_row):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Point every leaf at new_row[its current row of the leaf-value table]."""
    for i in range(nodes.shape[0]):
        if nodes[i, 0] == LEAF_MARK:
            nodes[i, 1] = new_row[nodes[i, 1]]


@njit(cache=True, nogil=True)
def distinct_row_ids(bits, limit):  # type: ignore[no-untyped-def]  # pragma: no cover
    """For uint64 rows [n, k]: the index of the first row of each distinct row (in order of first
    appearance) and each row's number among them; None once more than `limit` rows are distinct.

    A hash table sized by the distinct rows, not by n, with every hit confirmed on the whole row."""
    n, k = bits.shape
    capacity = 1024
    table = np.full(capacity, -1, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    count = 0
    for i in range(n):
        slot = _row_hash(bits, i, k) & (capacity - 1)
        while True:
            d = table[slot]
            if d < 0:
                table[slot] = count
                first[count] = i
                inverse[i] = count
                count += 1
                break
            j = first[d]
            same = True
            for c in range(k):
                if bits[j, c] != bits[i, c]:
                    same = False
                    break
            if same:
                inverse[i] = d
                break
            slot = (slot + 1) & (capacity - 1)
        if count > limit:
            return None
        if 2 * count > capacity:  # keep the table at most half full
            capacity *= 2
            table = np.full(capacity, -1, dtype=np.int64)
            for d in range(count):
                slot = _row_hash(bits, first[d], k) & (capacity - 1)
                while table[slot] >= 0:
                    slot = (slot + 1) & (capacity - 1)
                table[slot] = d
    return first[:count], inverse


@njit(cache=True, nogil=True)
def row_digests(bits):  # type: ignore[no-untyped-def]  # pragma: no cover
    """One 63-bit digest per uint64 row (the hash `distinct_row_ids` uses)."""
    n, k = bits.shape
    digests = np.empty(n, dtype=np.int64)
    for i in range(n):
        digests[i] = _row_hash(bits, i, k)
    return digests


@njit(cache=True, nogil=True)
def _row_hash(bits, i, k):  # type: ignore[no-untyped-def]  # pragma: no cover
    """FNV-1a over the row's words, with a final mix so the low bits (the table slot) vary."""
    h = np.uint64(0xCBF29CE484222325)
    for c in range(k):
        h = (h ^ bits[i, c]) * np.uint64(0x100000001B3)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(0x7FFFFFFFFFFFFFFF))
