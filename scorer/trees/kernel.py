"""Numba kernels over the packed forest: walking many trees in lockstep per row.

Packed node layout (16 bytes, int32 [n, 4] viewed also as float64 [n, 2]); the kernel reads it through
flat views, `ints` (int32, 4 per node) and `floats` (float64, 2 per node):
  ints[4i]:     feature index (>= 0) of a continuous split, LEAF_MARK for a leaf, or -2 - c for
                categorical split c (row c of the category table);
  ints[4i + 1]: absolute index of the right child (internal) or row of the leaf-value table (leaf);
  floats[2i + 1]: the threshold of a continuous split.
The left child of an internal node is always the next node (pre-order), so it is not stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

LEAF_MARK = -1


def _prefetch(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover - compiled code
    """Hint the CPU to start loading `array[index]` (1-d) into cache; no effect on results."""
    if not isinstance(array, types.Array) or array.ndim != 1 or not isinstance(index, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type, index_type = signature.args
        view = context.make_array(array_type)(context, builder, args[0])
        at = [context.cast(builder, args[1], index_type, types.intp)]
        address = cgutils.get_item_pointer(context, builder, array_type, view, at, wraparound=False)
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        declared = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, declared, "llvm.prefetch.p0i8")
        # read access, keep in all cache levels, data cache
        builder.call(function, [builder.bitcast(address, byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


prefetch: Any = intrinsic(_prefetch)


@njit(cache=True, nogil=True)
def sum_leaves_kernel(ints, floats, roots, values, cat_meta, cat_values, rows, out, leaf, lanes):  # type: ignore[no-untyped-def]  # pragma: no cover
    """out[r] = Σ_t values[leaf_t(rows[r])] in tree order, walking `lanes.shape[0] // 2` trees at once.

    `lanes` (uint64) is scratch: each walking tree's current node, then its tree number. Node indices
    are unsigned so that indexing skips numba's negative-index handling in the innermost loop.
    """
    n_trees = roots.shape[0]
    block = lanes.shape[0] // 2
    node_at = lanes[:block]
    tree_at = lanes[block:]
    k = values.shape[1]
    one = np.uint64(1)
    two = np.uint64(2)
    # blocks of trees outermost: a batch reuses the block's upper levels from cache across its rows
    for t0 in range(0, n_trees, block):
        width = min(block, n_trees - t0)
        for r in range(rows.shape[0]):
            x = rows[r]
            active = width
            for j in range(active):
                node_at[j] = roots[t0 + j]
                tree_at[j] = t0 + j
            # each pass moves every unfinished tree one level down; the next node of each is prefetched
            # as soon as it is known, so all lanes' memory loads are in flight together
            while active > 0:
                j = 0
                while j < active:
                    node = node_at[j]
                    at = node << two
                    f = ints[at]
                    if f >= 0:
                        # NaN <= t is false, so NaN goes right as in MLeap. Arithmetic, not a branch
                        # (it compiles to a conditional move): a mispredicted branch would discard the
                        # other lanes' work in flight. Unsigned wrap-around keeps the sum exact.
                        right = np.uint64(ints[at | one])
                        left = np.uint64(x[np.uint64(f)] <= floats[(node << one) | one])
                        following = right + (node + one - right) * left
                        prefetch(ints, following << two)
                        node_at[j] = following
                        j += 1
                    elif f == LEAF_MARK:
                        leaf[r, tree_at[j]] = ints[at | one]
                        active -= 1
                        node_at[j] = node_at[active]
                        tree_at[j] = tree_at[active]
                    else:
                        c = -2 - f
                        v = x[cat_meta[c, 0]]
                        found = False
                        for m in range(cat_meta[c, 2], cat_meta[c, 3]):
                            if cat_values[m] == v:
                                found = True
                                break
                        following = node + one
                        if found != (cat_meta[c, 1] != 0):
                            following = np.uint64(ints[at | one])
                        prefetch(ints, following << two)
                        node_at[j] = following
                        j += 1
    # summed in tree order so results do not depend on which tree finished first
    for r in range(rows.shape[0]):
        for c in range(k):
            out[r, c] = 0.0
        for t in range(n_trees):
            row = leaf[r, t]
            for c in range(k):
                out[r, c] += values[row, c]


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
