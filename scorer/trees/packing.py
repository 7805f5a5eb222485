"""Numba kernels used when packing a forest (scoring is the C kernel in scorer.trees._walk).

Imported only to compile a forest: a process that scores from the compiled cache never starts numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
