"""rtscore.v1 `Frame` ⇄ `LeapFrame`, and the check that a frame fits a model's inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from protos.rtscore.v1 import frame_pb2
from scorer.frame import DataType, Field, FrameError, LeapFrame

CT = frame_pb2.ColumnType
_INTEGRAL = ("byte", "short", "int", "long")
# The column type each LeapFrame scalar base travels as.
_SCALAR_TYPE = {
    "double": CT.COLUMN_TYPE_DOUBLE,
    "float": CT.COLUMN_TYPE_DOUBLE,
    **{b: CT.COLUMN_TYPE_INT64 for b in _INTEGRAL},
    "string": CT.COLUMN_TYPE_STRING,
    "boolean": CT.COLUMN_TYPE_BOOL,
}
# The LeapFrame base a column gets when the model does not say otherwise.
_DEFAULT_BASE = {
    CT.COLUMN_TYPE_DOUBLE: "double",
    CT.COLUMN_TYPE_INT64: "long",
    CT.COLUMN_TYPE_STRING: "string",
    CT.COLUMN_TYPE_BOOL: "boolean",
    CT.COLUMN_TYPE_DOUBLE_TENSOR: "double",
}
# The repeated field that carries each column type's values.
_CARRIER = {
    CT.COLUMN_TYPE_DOUBLE: "doubles",
    CT.COLUMN_TYPE_INT64: "int64s",
    CT.COLUMN_TYPE_STRING: "strings",
    CT.COLUMN_TYPE_BOOL: "bools",
    CT.COLUMN_TYPE_DOUBLE_TENSOR: "doubles",
}


def column_type(dtype: DataType) -> tuple[frame_pb2.ColumnType, list[int]]:
    """The wire column type and per-row shape for a LeapFrame data type."""
    if dtype.shape == "tensor" and dtype.base in ("double", "float", *_INTEGRAL):
        return CT.COLUMN_TYPE_DOUBLE_TENSOR, list(dtype.dimensions or ())
    if dtype.shape == "scalar":
        return _SCALAR_TYPE.get(dtype.base, CT.COLUMN_TYPE_UNSPECIFIED), []
    return CT.COLUMN_TYPE_UNSPECIFIED, []


def field_spec(field: Field) -> frame_pb2.FieldSpec:
    """A schema field as the wire's `FieldSpec`."""
    kind, shape = column_type(field.dtype)
    return frame_pb2.FieldSpec(name=field.name, type=kind, shape=shape, nullable=field.dtype.nullable)


def to_leap_frame(frame: frame_pb2.Frame, inputs: Mapping[str, Field]) -> LeapFrame:
    """Decode a wire frame; a column the model reads takes the model's declared base type."""
    n = frame.rows
    if n < 0:
        raise FrameError(f"frame rows must be non-negative, got {n}")
    fields: list[Field] = []
    arrays: list[np.ndarray] = []
    for i, col in enumerate(frame.columns):
        if not col.name:
            raise FrameError(f"column {i} has no name")
        declared = inputs.get(col.name)
        array = _decode_column(col, n)
        fields.append(Field(col.name, _dtype_for(col, array, declared)))
        arrays.append(array)
    return LeapFrame(fields, arrays, n)


def _decode_column(col: frame_pb2.Column, n: int) -> np.ndarray:
    where = f"column {col.name!r}"
    kind = col.type
    carrier = _CARRIER.get(kind)
    if carrier is None:
        raise FrameError(f"{where}: unknown column type {kind}")
    counts = {name: len(getattr(col, name)) for name in ("doubles", "int64s", "strings", "bools")}
    if sum(counts.values()) != counts[carrier]:
        raise FrameError(f"{where}: carries values in a field that does not match its type {CT.Name(kind)}")
    if kind == CT.COLUMN_TYPE_DOUBLE_TENSOR:
        if len(col.shape) != 1 or col.shape[0] < 0:
            raise FrameError(f"{where}: tensor shape must be one dimension >= 0, got {list(col.shape)}")
        k = int(col.shape[0])
        if len(col.doubles) != n * k:
            got = len(col.doubles)
            raise FrameError(f"{where}: tensor of shape [{k}] needs {n * k} values for {n} rows, got {got}")
        return np.asarray(col.doubles, dtype=np.float64).reshape(n, k)
    if col.shape:
        raise FrameError(f"{where}: a scalar column must have no shape, got {list(col.shape)}")
    if counts[carrier] != n:
        raise FrameError(f"{where}: has {counts[carrier]} values for {n} rows")
    if kind == CT.COLUMN_TYPE_DOUBLE:
        return np.asarray(col.doubles, dtype=np.float64)
    if kind == CT.COLUMN_TYPE_INT64:
        return np.asarray(col.int64s, dtype=np.int64)
    if kind == CT.COLUMN_TYPE_BOOL:
        return np.asarray(col.bools, dtype=np.bool_)
    return np.asarray(list(col.strings), dtype=object)


def _dtype_for(col: frame_pb2.Column, array: np.ndarray, declared: Field | None) -> DataType:
    if col.type == CT.COLUMN_TYPE_DOUBLE_TENSOR:
        return DataType.tensor("double", (int(array.shape[1]),))
    if declared is not None and declared.dtype.shape == "scalar":
        want = _SCALAR_TYPE.get(declared.dtype.base)
        if want == col.type:
            return DataType.scalar(declared.dtype.base, declared.dtype.nullable)
    return DataType.scalar(_DEFAULT_BASE[col.type])


def check_inputs(frame: LeapFrame, inputs: Sequence[Field]) -> LeapFrame:
    """Ensure `frame` has every input the model reads, of a fitting type; widens ints to doubles."""
    for field in inputs:
        if not frame.has(field.name):
            raise FrameError(f"frame is missing column {field.name!r}, which the model reads")
        got = frame.field(field.name).dtype
        want_kind, want_shape = column_type(field.dtype)
        got_kind, got_shape = column_type(got)
        if want_kind == CT.COLUMN_TYPE_DOUBLE and got_kind == CT.COLUMN_TYPE_INT64:
            # An integer where a double is read is exact: widen it rather than refuse the call.
            widened = frame.column(field.name).astype(np.float64)
            frame = frame.with_column(Field(field.name, field.dtype), widened)
            continue
        if want_kind == CT.COLUMN_TYPE_UNSPECIFIED:
            continue  # a type the wire cannot carry: the bundle itself decides
        if want_kind != got_kind:
            want = _describe(field.dtype)
            raise FrameError(f"column {field.name!r}: the model reads {want}, the frame has {_describe(got)}")
        if want_shape and got_shape and want_shape != got_shape:
            name = field.name
            raise FrameError(f"column {name!r}: model reads a tensor of size {want_shape}, got {got_shape}")
    return frame


def _describe(dtype: DataType) -> str:
    if dtype.shape == "tensor":
        return f"a {dtype.base} tensor{list(dtype.dimensions) if dtype.dimensions else ''}"
    return f"{dtype.shape} {dtype.base}"


def to_wire_frame(frame: LeapFrame, names: Sequence[str] | None = None) -> frame_pb2.Frame:
    """Encode the named columns (all when None) of a LeapFrame as a wire frame."""
    out = frame_pb2.Frame(rows=frame.n_rows)
    for name in frame.names if names is None else names:
        field, array = frame.field(name), frame.column(name)
        kind, shape = column_type(field.dtype)
        col = out.columns.add(name=name, type=kind, shape=shape)
        if kind == CT.COLUMN_TYPE_DOUBLE_TENSOR:
            col.shape[:] = [int(array.shape[1])]
            col.doubles.extend(np.asarray(array, dtype=np.float64).ravel().tolist())
        elif kind == CT.COLUMN_TYPE_DOUBLE:
            col.doubles.extend(np.asarray(array, dtype=np.float64).tolist())
        elif kind == CT.COLUMN_TYPE_INT64:
            col.int64s.extend(np.asarray(array, dtype=np.int64).tolist())
        elif kind == CT.COLUMN_TYPE_BOOL:
            col.bools.extend(np.asarray(array, dtype=np.bool_).tolist())
        elif kind == CT.COLUMN_TYPE_STRING:
            col.strings.extend("" if v is None else str(v) for v in array.tolist())
        else:
            raise FrameError(f"column {name!r}: type {_describe(field.dtype)} cannot be sent on the wire")
    return out
