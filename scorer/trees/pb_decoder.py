"""Read MLeap's `tree.pb`: size-prefixed `ml.bundle.dtree.Node` messages in pre-order, in one numba pass.

MLeap's JVM writer prefixes each message with a 4-byte big-endian size (Java's `DataOutputStream.writeInt`);
standard protobuf tooling writes a varint size instead. Both are read: a leading zero byte can only be the
high byte of a 4-byte size, because a varint size of zero would announce an empty, typeless node.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from scorer.trees.errors import TreeFormatError
from scorer.trees.preorder import CATEGORICAL, CONTINUOUS, LEAF, MAX_FEATURE_INDEX, assemble_tree
from scorer.trees.tree import Tree

_OK = 0
_TRUNCATED = 1
_BAD_VARINT = 2
_BAD_WIRE_TYPE = 3
_NO_NODE_TYPE = 4
_NO_SPLIT = 5
_NO_SPLIT_TYPE = 6
_BAD_PACKED = 7
_HUGE_FEATURE = 8

# Negative positions returned by the readers below, mapped to statuses by `_fault`.
_POS_BAD_VARINT = -1
_POS_TRUNCATED = -2
_POS_BAD_WIRE = -3

_MESSAGES = {
    _TRUNCATED: "truncated: a size or field runs past the end of the data",
    _BAD_VARINT: "malformed varint",
    _BAD_WIRE_TYPE: "a field has an unexpected wire type",
    _NO_NODE_TYPE: "node is neither internal nor leaf",
    _NO_SPLIT: "internal node has no split",
    _NO_SPLIT_TYPE: "split is neither continuous nor categorical",
    _BAD_PACKED: "packed doubles have a length that is not a multiple of 8",
    _HUGE_FEATURE: "feature index is too large",
}


def decode_tree_pb(data: bytes, where: str) -> Tree:
    """Decode a whole `tree.pb` file; malformed content raises `TreeFormatError` naming `where`."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise TreeFormatError(f"{where}: the tree has no nodes")
    big_endian_sizes = bool(buf[0] == 0)
    decoded = _decode(buf, big_endian_sizes, MAX_FEATURE_INDEX)
    (n, kind, feature, threshold, value_start, value_count, flat_values, cat_start, cat_count,
     flat_categories, cat_is_left, status, node) = decoded  # fmt: skip
    if status != _OK:
        raise TreeFormatError(f"{where}: node {node}: {_MESSAGES[status]}")
    categorical: dict[int, tuple[frozenset[float], bool]] = {}
    for i in np.flatnonzero(kind[:n] == CATEGORICAL):
        start = cat_start[i]
        cats = flat_categories[start : start + cat_count[i]]
        categorical[int(i)] = (frozenset(float(c) for c in cats), bool(cat_is_left[i]))
    return assemble_tree(
        where, kind[:n], feature[:n], threshold[:n], value_start[:n], value_count[:n], flat_values,
        categorical,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _varint(buf: np.ndarray, pos: int, end: int) -> tuple[int, int]:  # pragma: no cover - numba
    """(value, next position) of the varint at `pos`; a negative position signals a fault."""
    result = 0
    shift = 0
    while pos < end:
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            return 0, _POS_BAD_VARINT
        result |= (int(b) & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            return 0, _POS_BAD_VARINT
    return 0, _POS_TRUNCATED


@njit(cache=True, nogil=True)
def _put_double(buf: np.ndarray, pos: int, dest_bytes: np.ndarray, index: int) -> None:  # pragma: no cover
    """Copy the little-endian double at `pos` into slot `index` of a float64 array seen as bytes."""
    base = 8 * index
    for b in range(8):
        dest_bytes[base + b] = buf[pos + b]


@njit(cache=True, nogil=True)
def _skip(buf: np.ndarray, pos: int, end: int, wire: int) -> int:  # pragma: no cover - numba
    """Position after an unknown field's payload; negative on a fault."""
    if wire == 0:
        _, pos = _varint(buf, pos, end)
        return pos
    if wire == 1:
        return pos + 8 if pos + 8 <= end else _POS_TRUNCATED
    if wire == 5:
        return pos + 4 if pos + 4 <= end else _POS_TRUNCATED
    if wire == 2:
        length, pos = _varint(buf, pos, end)
        if pos < 0:
            return pos
        return pos + length if length <= end - pos else _POS_TRUNCATED
    return _POS_BAD_WIRE


@njit(cache=True, nogil=True)
def _fault(pos: int) -> int:  # pragma: no cover - numba
    """The status for a negative position from `_varint` or `_skip`."""
    if pos == _POS_BAD_VARINT:
        return _BAD_VARINT
    if pos == _POS_BAD_WIRE:
        return _BAD_WIRE_TYPE
    return _TRUNCATED


@njit(cache=True, nogil=True)
def _doubles(buf, pos, end, wire, out_bytes, count):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Append a packed or unpacked repeated-double field to float64 slots seen as bytes.

    Returns (next position, new count, status).
    """
    if wire == 1:
        if pos + 8 > end:
            return pos, count, _TRUNCATED
        _put_double(buf, pos, out_bytes, count)
        return pos + 8, count + 1, _OK
    if wire != 2:
        return pos, count, _BAD_WIRE_TYPE
    length, pos = _varint(buf, pos, end)
    if pos < 0:
        return pos, count, _fault(pos)
    if length > end - pos:
        return pos, count, _TRUNCATED
    if length % 8 != 0:
        return pos, count, _BAD_PACKED
    for j in range(length // 8):
        _put_double(buf, pos + 8 * j, out_bytes, count + j)
    return pos + length, count + length // 8, _OK


@njit(cache=True, nogil=True)
def _count_frames(buf: np.ndarray, big_endian_sizes: bool) -> int:  # pragma: no cover - numba
    """How many size-prefixed messages the data holds, counting a cut-off last one."""
    size = buf.shape[0]
    pos = 0
    count = 0
    while pos < size:
        if big_endian_sizes:
            if pos + 4 > size:
                return count + 1
            length = (
                (int(buf[pos]) << 24)
                | (int(buf[pos + 1]) << 16)
                | (int(buf[pos + 2]) << 8)
                | int(buf[pos + 3])
            )
            pos += 4 + length
        else:
            length, pos = _varint(buf, pos, size)
            if pos < 0:
                return count + 1
            pos += length
        count += 1
    return count


@njit(cache=True, nogil=True)
def _decode(buf, big_endian_sizes, max_feature):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Every node of the file into flat arrays; the last two results are (status, failing node)."""
    size = buf.shape[0]
    cap = _count_frames(buf, big_endian_sizes) + 1
    kind = np.zeros(cap, dtype=np.int8)
    feature = np.zeros(cap, dtype=np.int64)
    threshold = np.zeros(cap, dtype=np.float64)
    value_start = np.zeros(cap, dtype=np.int64)
    value_count = np.zeros(cap, dtype=np.int64)
    cat_start = np.zeros(cap, dtype=np.int64)
    cat_count = np.zeros(cap, dtype=np.int64)
    cat_is_left = np.zeros(cap, dtype=np.bool_)
    values = np.empty(size // 8 + 1, dtype=np.float64)
    cats = np.empty(size // 8 + 1, dtype=np.float64)
    # doubles are copied byte by byte into these views: the data has no alignment to rely on
    threshold_bytes = threshold.view(np.uint8)
    values_bytes = values.view(np.uint8)
    cats_bytes = cats.view(np.uint8)
    n_values = 0
    n_cats = 0
    n = 0
    pos = 0
    status = _OK
    while pos < size and status == _OK:
        # the node's size prefix
        if big_endian_sizes:
            if pos + 4 > size:
                status = _TRUNCATED
                break
            length = (
                (int(buf[pos]) << 24)
                | (int(buf[pos + 1]) << 16)
                | (int(buf[pos + 2]) << 8)
                | int(buf[pos + 3])
            )
            pos += 4
        else:
            length, pos = _varint(buf, pos, size)
            if pos < 0:
                status = _fault(pos)
                break
        if length > size - pos:
            status = _TRUNCATED
            break
        end = pos + length
        kind[n] = -1
        value_start[n] = n_values
        cat_start[n] = n_cats
        # fields of Node; each nested message is walked through a small stack of ends
        while pos < end and status == _OK:
            key, pos = _varint(buf, pos, end)
            if pos < 0:
                status = _fault(pos)
                break
            field = key >> 3
            wire = key & 7
            if (field == 1 or field == 2) and wire == 2:
                sub_len, pos = _varint(buf, pos, end)
                if pos < 0 or sub_len > end - pos:
                    status = _fault(pos)
                    break
                sub_end = pos + sub_len
                if field == 2:
                    kind[n] = LEAF
                    value_count[n] = 0
                    n_values = value_start[n]
                    while pos < sub_end and status == _OK:
                        key, pos = _varint(buf, pos, sub_end)
                        if pos < 0:
                            status = _fault(pos)
                        elif key >> 3 == 1:
                            pos, n_values, status = _doubles(
                                buf, pos, sub_end, key & 7, values_bytes, n_values
                            )
                        else:
                            pos = _skip(buf, pos, sub_end, key & 7)
                            if pos < 0:
                                status = _fault(pos)
                    value_count[n] = n_values - value_start[n]
                else:
                    kind[n] = -2  # internal until its split says which
                    status = _read_internal(
                        buf, pos, sub_end, n, kind, feature, threshold_bytes, cat_start, cat_count,
                        cat_is_left, cats_bytes,
                    )  # fmt: skip
                    n_cats = cat_start[n] + cat_count[n]
                    pos = sub_end
            else:
                pos = _skip(buf, pos, end, wire)
                if pos < 0:
                    status = _fault(pos)
        if status != _OK:
            break
        if kind[n] == -1:
            status = _NO_NODE_TYPE
            break
        if kind[n] == -2:
            status = _NO_SPLIT
            break
        if kind[n] != LEAF and feature[n] > max_feature:
            status = _HUGE_FEATURE
            break
        n += 1
    return (
        n, kind, feature, threshold, value_start, value_count, values[:n_values].copy(), cat_start,
        cat_count, cats[:n_cats].copy(), cat_is_left, status, n,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _read_internal(  # pragma: no cover - numba
    buf: np.ndarray,
    pos: int,
    end: int,
    n: int,
    kind: np.ndarray,
    feature: np.ndarray,
    threshold_bytes: np.ndarray,
    cat_start: np.ndarray,
    cat_count: np.ndarray,
    cat_is_left: np.ndarray,
    cats_bytes: np.ndarray,
) -> int:
    """Read an InternalNode's split into row `n`; returns a status."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        if pos < 0:
            return _fault(pos)
        if key >> 3 != 1 or key & 7 != 2:
            pos = _skip(buf, pos, end, key & 7)
            if pos < 0:
                return _fault(pos)
            continue
        split_len, pos = _varint(buf, pos, end)
        if pos < 0 or split_len > end - pos:
            return _fault(pos)
        split_end = pos + split_len
        kind[n] = -3  # a split without a type so far
        while pos < split_end:
            key, pos = _varint(buf, pos, split_end)
            if pos < 0:
                return _fault(pos)
            which = key >> 3
            if (which == 1 or which == 2) and key & 7 == 2:
                body_len, pos = _varint(buf, pos, split_end)
                if pos < 0 or body_len > split_end - pos:
                    return _fault(pos)
                body_end = pos + body_len
                kind[n] = CATEGORICAL if which == 1 else CONTINUOUS
                feature[n] = 0
                for b in range(8):
                    threshold_bytes[8 * n + b] = 0
                cat_count[n] = 0
                cat_is_left[n] = False
                while pos < body_end:
                    key, pos = _varint(buf, pos, body_end)
                    if pos < 0:
                        return _fault(pos)
                    f = key >> 3
                    w = key & 7
                    if f == 1 and w == 0:
                        value, pos = _varint(buf, pos, body_end)
                        feature[n] = value
                    elif which == 2 and f == 2 and w == 1:
                        if pos + 8 > body_end:
                            return _TRUNCATED
                        _put_double(buf, pos, threshold_bytes, n)
                        pos += 8
                    elif which == 1 and f == 2 and w == 0:
                        value, pos = _varint(buf, pos, body_end)
                        cat_is_left[n] = value != 0
                    elif which == 1 and f == 4:
                        count = cat_start[n] + cat_count[n]
                        pos, count, status = _doubles(buf, pos, body_end, w, cats_bytes, count)
                        if status != _OK:
                            return status
                        cat_count[n] = count - cat_start[n]
                    elif f in (1, 2, 4) and not (which == 1 and f == 3):
                        return _BAD_WIRE_TYPE
                    else:
                        pos = _skip(buf, pos, body_end, w)
                    if pos < 0:
                        return _fault(pos)
            else:
                pos = _skip(buf, pos, split_end, key & 7)
                if pos < 0:
                    return _fault(pos)
        if kind[n] == -3:
            return _NO_SPLIT_TYPE
    return _OK
