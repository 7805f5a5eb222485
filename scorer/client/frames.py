"""Frames the pool builds: dense all-double frames, many one-row frames joined, a batch split by row."""

from __future__ import annotations

import array
import sys
from collections.abc import Sequence

from protos.rtscore.v1 import frame_pb2

DOUBLE = frame_pb2.COLUMN_TYPE_DOUBLE
_REPEATED = {
    frame_pb2.COLUMN_TYPE_DOUBLE: "doubles",
    frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR: "doubles",
    frame_pb2.COLUMN_TYPE_INT64: "int64s",
    frame_pb2.COLUMN_TYPE_STRING: "strings",
    frame_pb2.COLUMN_TYPE_BOOL: "bools",
}
_LITTLE = sys.byteorder == "little"


def dense_frame(names: Sequence[str], rows: Sequence[Sequence[float]]) -> frame_pb2.Frame:
    """Rows of doubles as one `Frame.dense` block (row-major little-endian float64)."""
    values = array.array("d", [v for row in rows for v in row])
    if len(values) != len(rows) * len(names):
        raise ValueError(f"every row needs {len(names)} values")
    if not _LITTLE:
        values.byteswap()
    return frame_pb2.Frame(
        rows=len(rows), dense=frame_pb2.DenseDoubles(names=list(names), values=values.tobytes())
    )


def layout(frame: frame_pb2.Frame) -> tuple[object, ...]:
    """What must match for frames to be joined: column names, types and shapes, dense names."""
    return (
        tuple((c.name, c.type, tuple(c.shape)) for c in frame.columns),
        tuple(frame.dense.names),
    )


def join_rows(frames: Sequence[frame_pb2.Frame], dense: bool) -> frame_pb2.Frame:
    """Frames of one layout as one frame of all their rows; all-double scalar columns go dense if asked."""
    first = frames[0]
    rows = sum(f.rows for f in frames)
    columns = first.columns
    if dense and columns and not first.dense.names and all(c.type == DOUBLE for c in columns):
        width = len(columns)
        values = array.array("d", bytes(8 * rows * width))
        at = 0
        for frame in frames:
            n = frame.rows
            for j, column in enumerate(frame.columns):
                values[at + j : at + n * width : width] = array.array("d", column.doubles)
            at += n * width
        if not _LITTLE:
            values.byteswap()
        names = [c.name for c in columns]
        return frame_pb2.Frame(rows=rows, dense=frame_pb2.DenseDoubles(names=names, values=values.tobytes()))
    out = frame_pb2.Frame(rows=rows)
    for j, column in enumerate(columns):
        joined = out.columns.add(name=column.name, type=column.type, shape=column.shape)
        values_of = getattr(joined, _REPEATED.get(column.type, "doubles"))
        for frame in frames:
            values_of.extend(getattr(frame.columns[j], _REPEATED.get(column.type, "doubles")))
    if first.dense.names:
        out.dense.names.extend(first.dense.names)
        out.dense.values = b"".join(f.dense.values for f in frames)
    return out


def split_rows(frame: frame_pb2.Frame, counts: Sequence[int]) -> list[frame_pb2.Frame]:
    """A batch's frame cut into consecutive frames of `counts` rows each."""
    total = frame.rows
    parts = [frame_pb2.Frame(rows=n) for n in counts]
    for column in frame.columns:
        field = _REPEATED.get(column.type, "doubles")
        values = getattr(column, field)
        width = len(values) // total if total else 0
        at = 0
        for part, n in zip(parts, counts, strict=True):
            piece = part.columns.add(name=column.name, type=column.type, shape=column.shape)
            getattr(piece, field).extend(values[at : at + n * width])
            at += n * width
    if frame.dense.names:
        row_bytes = 8 * len(frame.dense.names)
        at = 0
        for part, n in zip(parts, counts, strict=True):
            part.dense.names.extend(frame.dense.names)
            part.dense.values = frame.dense.values[at : at + n * row_bytes]
            at += n * row_bytes
    return parts
