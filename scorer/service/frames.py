"""rtscore.v1 `Frame` ⇄ `LeapFrame`, and the check that a frame fits a model's inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from protos.rtscore.v1 import frame_pb2
from scorer.frame import INTEGRAL_BASES, DataType, Field, FrameError, LeapFrame

CT = frame_pb2.ColumnType
# Plain module constants: the enum wrapper's attribute lookup is slow on the per-call path.
UNSPECIFIED = frame_pb2.COLUMN_TYPE_UNSPECIFIED
DOUBLE = frame_pb2.COLUMN_TYPE_DOUBLE
INT64 = frame_pb2.COLUMN_TYPE_INT64
STRING = frame_pb2.COLUMN_TYPE_STRING
BOOL = frame_pb2.COLUMN_TYPE_BOOL
TENSOR = frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR
# The column type each LeapFrame scalar base travels as.
_SCALAR_TYPE = {
    "double": DOUBLE,
    "float": DOUBLE,
    **{b: INT64 for b in INTEGRAL_BASES},
    "string": STRING,
    "boolean": BOOL,
}
# The LeapFrame type a column gets when the model does not say otherwise.
_DEFAULT_TYPE: dict[int, DataType] = {
    DOUBLE: DataType.scalar("double"),
    INT64: DataType.scalar("long"),
    STRING: DataType.scalar("string"),
    BOOL: DataType.scalar("boolean"),
}
# The repeated field that carries each column type's values.
_CARRIER = {DOUBLE: "doubles", INT64: "int64s", STRING: "strings", BOOL: "bools", TENSOR: "doubles"}
_NUMPY = {DOUBLE: np.float64, INT64: np.int64, BOOL: np.bool_}
# Below this many values np.fromiter beats np.asarray on a protobuf repeated field; above, the reverse.
_SMALL = 64


def column_type(dtype: DataType) -> tuple[frame_pb2.ColumnType, list[int]]:
    """The wire column type and per-row shape for a LeapFrame data type."""
    if dtype.shape == "tensor" and dtype.base in ("double", "float", *INTEGRAL_BASES):
        return TENSOR, list(dtype.dimensions or ())
    if dtype.shape == "scalar":
        return _SCALAR_TYPE.get(dtype.base, UNSPECIFIED), []
    return UNSPECIFIED, []


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
        name = col.name
        if not name:
            raise FrameError(f"column {i} has no name")
        array = _decode_column(col, n)
        fields.append(Field(name, _dtype_for(col.type, array, inputs.get(name))))
        arrays.append(array)
    return LeapFrame(fields, arrays, n)


def _decode_column(col: frame_pb2.Column, n: int) -> np.ndarray:
    kind = col.type
    carrier = _CARRIER.get(kind)
    if carrier is None:
        raise FrameError(f"column {col.name!r}: unknown column type {kind}")
    values = getattr(col, carrier)
    count = len(values)
    if len(col.doubles) + len(col.int64s) + len(col.strings) + len(col.bools) != count:
        raise FrameError(
            f"column {col.name!r}: carries values in a field that does not match its type {CT.Name(kind)}"
        )
    if kind == TENSOR:
        if len(col.shape) != 1 or col.shape[0] < 0:
            raise FrameError(
                f"column {col.name!r}: tensor shape must be one dimension >= 0, got {list(col.shape)}"
            )
        k = int(col.shape[0])
        if count != n * k:
            raise FrameError(
                f"column {col.name!r}: tensor of shape [{k}] needs {n * k} values for {n} rows, got {count}"
            )
        return _numbers(values, np.float64, count).reshape(n, k)
    if col.shape:
        raise FrameError(f"column {col.name!r}: a scalar column must have no shape, got {list(col.shape)}")
    if count != n:
        raise FrameError(f"column {col.name!r}: has {count} values for {n} rows")
    if kind == STRING:
        return np.asarray(list(values), dtype=object)
    return _numbers(values, _NUMPY[kind], count)


def _numbers(values: Sequence[float], dtype: type, count: int) -> np.ndarray:
    if count < _SMALL:
        return np.fromiter(values, dtype, count)
    return np.asarray(values, dtype=dtype)


def _dtype_for(kind: int, array: np.ndarray, declared: Field | None) -> DataType:
    if kind == TENSOR:
        return DataType.tensor("double", (int(array.shape[1]),))
    if (
        declared is not None
        and declared.dtype.shape == "scalar"
        and _SCALAR_TYPE.get(declared.dtype.base) == kind
    ):
        return declared.dtype
    return _DEFAULT_TYPE[kind]


def check_inputs(frame: LeapFrame, inputs: Sequence[Field]) -> LeapFrame:
    """Ensure `frame` has every input the model reads, of a fitting type; widens ints to doubles."""
    for field in inputs:
        if not frame.has(field.name):
            raise FrameError(f"frame is missing column {field.name!r}, which the model reads")
        got = frame.field(field.name).dtype
        want_kind, want_shape = column_type(field.dtype)
        got_kind, got_shape = column_type(got)
        if want_kind == DOUBLE and got_kind == INT64:
            # An integer where a double is read is exact: widen it rather than refuse the call.
            widened = frame.column(field.name).astype(np.float64)
            frame = frame.with_column(Field(field.name, field.dtype), widened)
            continue
        if want_kind == UNSPECIFIED:
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
        if kind == TENSOR:
            col.shape[:] = [int(array.shape[1])]
            _put_doubles(col, array)
        elif kind == DOUBLE:
            _put_doubles(col, array)
        elif kind == INT64:
            col.int64s.extend(np.asarray(array, dtype=np.int64).tolist())
        elif kind == BOOL:
            col.bools.extend(np.asarray(array, dtype=np.bool_).tolist())
        elif kind == STRING:
            col.strings.extend("" if v is None else str(v) for v in array.tolist())
        else:
            raise FrameError(f"column {name!r}: type {_describe(field.dtype)} cannot be sent on the wire")
    return out


def _put_doubles(col: frame_pb2.Column, array: np.ndarray) -> None:
    values = np.ascontiguousarray(array, dtype="<f8").ravel()
    if values.size < _SMALL:
        col.doubles.extend(values.tolist())
        return
    # A packed double field is the little-endian bytes themselves: parsing them beats a per-value extend.
    data = values.tobytes()
    col.MergeFromString(_DOUBLES_TAG + varint(len(data)) + data)


_DOUBLES_TAG = bytes([frame_pb2.Column.DOUBLES_FIELD_NUMBER << 3 | 2])  # length-delimited (packed)


def varint(n: int) -> bytes:
    """`n` as a protobuf base-128 varint."""
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
