"""scikit-learn trees into MLeap's `tree.pb` / `tree.json` bytes, with no Python object per node."""

from __future__ import annotations

import json
from typing import Any

import numba
import numpy as np

from rtscore.errors import InvalidArgument
from scorer.trees.tree import Tree


@numba.njit(cache=True, nogil=True)
def _preorder_ids(left: np.ndarray, right: np.ndarray) -> np.ndarray:  # pragma: no cover - numba
    """Node ids in pre-order (node, left subtree, right subtree) starting from node 0."""
    n = left.shape[0]
    order = np.empty(n, dtype=np.int64)
    stack = np.empty(n + 1, dtype=np.int64)
    top = 0
    stack[0] = 0
    count = 0
    while top >= 0:
        node = stack[top]
        top -= 1
        order[count] = node
        count += 1
        if left[node] >= 0:
            top += 1
            stack[top] = right[node]
            top += 1
            stack[top] = left[node]
    return order[:count]


def tree_from_sklearn(sk_tree: Any, leaf_values: np.ndarray) -> Tree:
    """Re-index a fitted `sklearn.tree._tree.Tree` into pre-order with the given per-node leaf values."""
    left = np.asarray(sk_tree.children_left, dtype=np.int64)
    right = np.asarray(sk_tree.children_right, dtype=np.int64)
    order = _preorder_ids(left, right)
    if order.shape[0] != left.shape[0]:
        raise InvalidArgument(f"tree has {left.shape[0]} nodes but only {order.shape[0]} reachable from root")
    new_id = np.empty_like(order)
    new_id[order] = np.arange(order.shape[0])
    old_left = left[order]
    old_right = right[order]
    is_leaf = old_left < 0
    feature = np.where(is_leaf, -1, np.asarray(sk_tree.feature, dtype=np.int64)[order]).astype(np.int32)
    threshold = np.where(is_leaf, 0.0, np.asarray(sk_tree.threshold, dtype=np.float64)[order])
    new_left = np.where(is_leaf, -1, new_id[np.maximum(old_left, 0)]).astype(np.int32)
    new_right = np.where(is_leaf, -1, new_id[np.maximum(old_right, 0)]).astype(np.int32)
    values = np.asarray(leaf_values, dtype=np.float64)[order]
    values = np.where(is_leaf[:, None], values, 0.0)
    return Tree(feature=feature, threshold=threshold, left=new_left, right=new_right, values=values)


@numba.njit(cache=True, inline="always")
def _varint_len(v: int) -> int:  # pragma: no cover - numba
    n = 1
    while v >= 128:
        v >>= 7
        n += 1
    return n


@numba.njit(cache=True, inline="always")
def _put_varint(out: np.ndarray, pos: int, v: int) -> int:  # pragma: no cover - numba
    while v >= 128:
        out[pos] = (v & 0x7F) | 0x80
        v >>= 7
        pos += 1
    out[pos] = v
    return pos + 1


@numba.njit(cache=True, inline="always")
def _put_fixed64(out: np.ndarray, pos: int, bits: np.uint64) -> int:  # pragma: no cover - numba
    for b in range(8):
        out[pos + b] = (bits >> np.uint64(8 * b)) & np.uint64(0xFF)
    return pos + 8


@numba.njit(cache=True, inline="always")
def _internal_lengths(feature: int, thr_bits: np.uint64) -> tuple[int, int, int]:  # pragma: no cover - numba
    """Byte lengths of an internal node's ContinuousSplit, Split and InternalNode messages."""
    cont = 0
    if feature != 0:
        cont += 1 + _varint_len(feature)
    if thr_bits != 0:
        cont += 9
    split = 1 + _varint_len(cont) + cont
    return cont, split, 1 + _varint_len(split) + split


@numba.njit(cache=True, inline="always")
def _leaf_length(k: int) -> int:  # pragma: no cover - numba
    """Byte length of a LeafNode message holding `k` packed doubles."""
    return 1 + _varint_len(8 * k) + 8 * k if k > 0 else 0


@numba.njit(cache=True, nogil=True)
def _encode_nodes(
    feature: np.ndarray, thr_bits: np.ndarray, value_bits: np.ndarray, is_leaf: np.ndarray
) -> np.ndarray:  # pragma: no cover - numba
    """Each node as a 4-byte big-endian length then an `ml.bundle.dtree.Node` message, in order."""
    n = feature.shape[0]
    k = value_bits.shape[1]
    leaf = _leaf_length(k)
    sizes = np.empty(n, dtype=np.int64)
    total = 0
    for i in range(n):
        body = leaf if is_leaf[i] else _internal_lengths(feature[i], thr_bits[i])[2]
        sizes[i] = 1 + _varint_len(body) + body
        total += 4 + sizes[i]
    out = np.empty(total, dtype=np.uint8)
    pos = 0
    for i in range(n):
        size = sizes[i]
        out[pos] = (size >> 24) & 0xFF
        out[pos + 1] = (size >> 16) & 0xFF
        out[pos + 2] = (size >> 8) & 0xFF
        out[pos + 3] = size & 0xFF
        pos += 4
        if is_leaf[i]:
            out[pos] = 0x12  # Node.leaf, length-delimited
            pos = _put_varint(out, pos + 1, leaf)
            if k > 0:
                out[pos] = 0x0A  # LeafNode.values, packed
                pos = _put_varint(out, pos + 1, 8 * k)
                for j in range(k):
                    pos = _put_fixed64(out, pos, value_bits[i, j])
            continue
        cont, split, internal = _internal_lengths(feature[i], thr_bits[i])
        out[pos] = 0x0A  # Node.internal
        pos = _put_varint(out, pos + 1, internal)
        out[pos] = 0x0A  # InternalNode.split
        pos = _put_varint(out, pos + 1, split)
        out[pos] = 0x12  # Split.continuous
        pos = _put_varint(out, pos + 1, cont)
        if feature[i] != 0:
            out[pos] = 0x08  # ContinuousSplit.feature_index
            pos = _put_varint(out, pos + 1, feature[i])
        if thr_bits[i] != 0:
            out[pos] = 0x11  # ContinuousSplit.threshold, fixed64
            pos = _put_fixed64(out, pos + 1, thr_bits[i])
    return out


def _check_continuous(tree: Tree) -> None:
    if tree.categorical:
        raise InvalidArgument("rtscore's tree writer handles continuous splits only")
    internal = tree.left >= 0
    if not np.all(np.isfinite(tree.threshold[internal])):
        raise InvalidArgument("tree has a NaN or infinite split threshold")


def encode_tree_pb(tree: Tree) -> bytes:
    """MLeap's `tree.pb`: every node, pre-order, as a big-endian int32 size then a dtree `Node` message."""
    _check_continuous(tree)
    is_leaf = tree.left < 0
    feature = np.ascontiguousarray(np.where(is_leaf, 0, tree.feature), dtype=np.int64)
    thr_bits = np.ascontiguousarray(tree.threshold, dtype=np.float64).view(np.uint64)
    value_bits = np.ascontiguousarray(tree.values, dtype=np.float64).view(np.uint64)
    return _encode_nodes(feature, thr_bits, value_bits, is_leaf).tobytes()


# One encoder for every leaf: `json.dumps` with separators builds a new encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def encode_tree_json(tree: Tree) -> bytes:
    """MLeap's `tree.json`: one compact JSON node per line, pre-order."""
    _check_continuous(tree)
    features = tree.feature.tolist()
    thresholds = tree.threshold.tolist()
    values = tree.values.tolist()
    leaf = (tree.left < 0).tolist()
    lines = [
        '{"type":"leaf","values":' + _COMPACT.encode(values[i]) + "}"
        if leaf[i]
        else f'{{"type":"internal","split":{{"type":"continuous","featureIndex":{features[i]},'
        f'"threshold":{thresholds[i]!r}}}}}'
        for i in range(len(leaf))
    ]
    lines.append("")
    return "\n".join(lines).encode("ascii")
