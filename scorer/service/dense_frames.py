"""The dense request form: a frame's double inputs as one row-major float64 block, read with one
`np.frombuffer`.

`Frame.dense` carries `names` once and `values` as rows x len(names) little-endian float64s, row after
row (KServe v2's `raw_input_contents`). The block becomes the frame's columns as views of one array, with
no per-value Python work. What a set of names means for the model (its fields, whether it fits) depends
on the names alone, so it is worked out once per distinct name list and remembered. Like the columnar
form, NaN is a missing value and infinities pass through as numbers: the model decides what they mean.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from protos.rtscore.v1 import frame_pb2
from scorer.frame import DataType, Field, FrameError, LeapFrame
from scorer.service.frames import check_inputs, to_leap_frame

_PLAIN_DOUBLE = DataType.scalar("double")
_LITTLE_F8 = np.dtype("<f8")
# Name lists remembered per model; a model sees few distinct request schemas.
_MAX_SCHEMAS = 256


class _DenseSchema:
    """One name list, as the model sees it: its fields, and whether a frame of only these fits as is."""

    __slots__ = ("fields", "fits", "index", "width")

    def __init__(self, fields: list[Field], fits: bool) -> None:
        self.fields = tuple(fields)
        self.index = {f.name: i for i, f in enumerate(fields)}  # shared by every frame of these names
        self.width = len(fields)
        self.fits = fits


class DenseFrameDecoder:
    """Decodes frames that carry a dense block, for one model, checking them against its inputs."""

    def __init__(self, inputs: Sequence[Field]) -> None:
        self._inputs = inputs
        self._by_name = {f.name: f for f in inputs}
        self._schemas: dict[tuple[str, ...], _DenseSchema] = {}

    def decode(self, frame: frame_pb2.Frame) -> LeapFrame:
        """The frame (dense block and any columns beside it), fitted to the model; FrameError if not."""
        dense = frame.dense
        names = tuple(dense.names)
        schema = self._schemas.get(names)
        if schema is None:
            schema = self._schema(names)
        rows = frame.rows
        values = dense.values
        if rows <= 0:
            raise FrameError(f"a frame with a dense block needs rows >= 1, got {rows}")
        if len(values) != 8 * rows * schema.width:
            raise FrameError(
                f"dense block: {rows} rows of {schema.width} columns need {8 * rows * schema.width} bytes "
                f"of float64, got {len(values)}"
            )
        matrix = np.frombuffer(values, dtype=_LITTLE_F8).reshape(rows, schema.width)
        columns = tuple(matrix.T)  # one strided view per column; the block itself is never copied
        if frame.columns:
            return self._with_columns(frame, schema, columns)
        decoded = LeapFrame.of_checked(schema.fields, columns, rows, schema.index)
        return decoded if schema.fits else check_inputs(decoded, self._inputs)

    def _with_columns(
        self, frame: frame_pb2.Frame, schema: _DenseSchema, columns: tuple[np.ndarray, ...]
    ) -> LeapFrame:
        """A frame whose dense block sits beside ordinary columns: both decoded, then checked together."""
        plain = to_leap_frame(_without_dense(frame), self._by_name)
        for field in schema.fields:
            if plain.has(field.name):
                raise FrameError(f"column {field.name!r} appears both in the dense block and as a column")
        merged = plain.with_columns(zip(schema.fields, columns, strict=True))
        return check_inputs(merged, self._inputs)

    def _schema(self, names: tuple[str, ...]) -> _DenseSchema:
        if not names:
            raise FrameError("dense block has no names: name each of its columns once")
        seen: set[str] = set()
        for i, name in enumerate(names):
            if not name:
                raise FrameError(f"dense block: column {i} has no name")
            if name in seen:
                raise FrameError(f"dense block: column {name!r} appears twice")
            seen.add(name)
            if name not in self._by_name:
                known = ", ".join(sorted(self._by_name)) or "none"
                raise FrameError(f"dense block: the model reads no column {name!r} (it reads: {known})")
        fields = [Field(name, self._declared(name)) for name in names]
        sample = LeapFrame(fields, [np.zeros(1) for _ in fields], 1)
        try:
            fits = check_inputs(sample, self._inputs) is sample  # the fit depends on the names alone
        except FrameError:
            fits = False  # a frame of only these is refused; decode says why on each call
        schema = _DenseSchema(fields, fits)
        if len(self._schemas) < _MAX_SCHEMAS:
            self._schemas[names] = schema
        return schema

    def _declared(self, name: str) -> DataType:
        declared = self._by_name[name].dtype
        if declared.shape == "scalar" and declared.base == "double":
            return declared
        return _PLAIN_DOUBLE  # check_inputs then names the mismatch (e.g. a string input sent as doubles)


def planned_block(frame: frame_pb2.Frame, names: list[str]) -> np.ndarray | None:
    """`frame`'s dense block as a rows x len(names) matrix when it holds exactly `names`, in that order,
    and well formed; else None, and `DenseFrameDecoder` decodes the frame (or says what is wrong)."""
    dense = frame.dense
    rows = frame.rows
    values = dense.values
    if rows <= 0 or len(values) != 8 * rows * len(names) or dense.names != names:
        return None
    return np.frombuffer(values, dtype=_LITTLE_F8).reshape(rows, len(names))


def _without_dense(frame: frame_pb2.Frame) -> frame_pb2.Frame:
    plain = frame_pb2.Frame()
    plain.CopyFrom(frame)
    plain.ClearField("dense")
    return plain


def has_dense(frame: frame_pb2.Frame) -> bool:
    """Whether `frame` carries a dense block (an empty one counts as none)."""
    return frame.HasField("dense") and bool(frame.dense.names or frame.dense.values)


def dense_frame(names: Sequence[str], matrix: np.ndarray) -> frame_pb2.Frame:
    """A wire frame carrying `matrix` (rows x len(names) doubles) as its dense block."""
    block = np.ascontiguousarray(matrix, dtype=_LITTLE_F8)
    if block.ndim != 2 or block.shape[1] != len(names):
        width = len(names)
        raise FrameError(f"a dense block of {width} names needs a 2-D matrix that wide, got {block.shape}")
    return frame_pb2.Frame(
        rows=block.shape[0], dense=frame_pb2.DenseDoubles(names=list(names), values=block.tobytes())
    )


def densify(frame: frame_pb2.Frame, only: Collection[str] | None = None) -> frame_pb2.Frame:
    """`frame` with its scalar double columns (those named in `only`, when given: say the model's inputs,
    since a dense block may name nothing else) moved into one dense block; other columns stay as they
    are. A frame that already has a block, has no rows or no such column comes back unchanged."""
    n = frame.rows
    if n < 1 or has_dense(frame):
        return frame
    moved: list[frame_pb2.Column] = []
    kept: list[frame_pb2.Column] = []
    for col in frame.columns:
        plain = col.type == frame_pb2.COLUMN_TYPE_DOUBLE and not col.shape and len(col.doubles) == n
        wanted = only is None or col.name in only
        (moved if plain and wanted and col.name else kept).append(col)
    names = [c.name for c in moved]
    if not moved or len(set(names)) != len(names):
        return frame  # nothing to move, or a malformed frame best refused as the caller sent it
    matrix = np.empty((n, len(moved)), dtype=_LITTLE_F8)
    for i, col in enumerate(moved):
        matrix[:, i] = col.doubles
    out = dense_frame(names, matrix)
    out.columns.extend(kept)
    return out
