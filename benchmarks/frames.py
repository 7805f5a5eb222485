"""Benchmark inputs: MLeap JSON LeapFrames turned into `rtscore.v1.Frame` score requests."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protos.rtscore.v1 import frame_pb2, scorer_pb2
from rtscore.errors import InvalidArgument

_DOUBLE_BASES = {"double", "float"}
_INT_BASES = {"integer", "int", "long", "short", "byte"}


class BenchFrameError(InvalidArgument):
    """A benchmark frame file that cannot become score requests."""


@dataclass(frozen=True)
class ColumnSpec:
    """Where one LeapFrame field goes in a `rtscore.v1.Column`."""

    name: str
    type: int
    shape: tuple[int, ...] = ()


def load_leap_frame(path: Path) -> dict[str, Any]:
    """Read an MLeap JSON LeapFrame file, checking its top-level shape."""
    try:
        obj = json.loads(path.read_text())
    except OSError as err:
        raise BenchFrameError(f"{path}: cannot read frame file: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise BenchFrameError(f"{path}: not JSON: {err}") from err
    _check_shape(obj, str(path))
    return dict(obj)


def _check_shape(obj: Any, where: str) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("schema"), dict):
        raise BenchFrameError(f"{where}: expected an MLeap LeapFrame with a 'schema' object")
    if not isinstance(obj["schema"].get("fields"), list) or not obj["schema"]["fields"]:
        raise BenchFrameError(f"{where}: schema.fields must be a non-empty list")
    if not isinstance(obj.get("rows"), list) or not obj["rows"]:
        raise BenchFrameError(f"{where}: 'rows' must be a non-empty list")


def column_specs(obj: dict[str, Any], where: str = "frame") -> list[ColumnSpec]:
    """The rtscore column type of each field of a LeapFrame schema."""
    _check_shape(obj, where)
    return [_column_spec(field, f"{where}: field {i}") for i, field in enumerate(obj["schema"]["fields"])]


def _column_spec(field: Any, where: str) -> ColumnSpec:
    if not isinstance(field, dict) or not isinstance(field.get("name"), str):
        raise BenchFrameError(f"{where}: a field needs a string 'name'")
    name, declared = field["name"], field.get("type")
    where = f"{where} ({name!r})"
    if isinstance(declared, str):
        return ColumnSpec(name, _scalar_type(declared, where))
    if isinstance(declared, dict):
        kind, base = declared.get("type"), declared.get("base")
        if kind == "basic" and isinstance(base, str):
            return ColumnSpec(name, _scalar_type(base, where))
        if kind == "tensor" and base in _DOUBLE_BASES:
            dims = declared.get("dimensions")
            if not isinstance(dims, list) or len(dims) != 1 or not isinstance(dims[0], int) or dims[0] < 1:
                raise BenchFrameError(f"{where}: tensor fields need fixed 'dimensions' [k], got {dims!r}")
            return ColumnSpec(name, frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR, (dims[0],))
    raise BenchFrameError(f"{where}: unsupported field type {declared!r}")


def _scalar_type(base: str, where: str) -> int:
    if base in _DOUBLE_BASES:
        return frame_pb2.COLUMN_TYPE_DOUBLE
    if base in _INT_BASES:
        return frame_pb2.COLUMN_TYPE_INT64
    if base == "boolean":
        return frame_pb2.COLUMN_TYPE_BOOL
    if base == "string":
        return frame_pb2.COLUMN_TYPE_STRING
    raise BenchFrameError(f"{where}: unsupported type {base!r}")


def to_frame(obj: dict[str, Any], rows: Sequence[int] | None = None, where: str = "frame") -> frame_pb2.Frame:
    """Convert a LeapFrame (or the rows at the given indices) to a columnar `rtscore.v1.Frame`."""
    specs = column_specs(obj, where)
    all_rows = obj["rows"]
    picked = range(len(all_rows)) if rows is None else rows
    frame = frame_pb2.Frame(rows=len(picked))
    columns = [frame.columns.add(name=s.name, type=s.type, shape=s.shape) for s in specs]
    for r in picked:
        row = all_rows[r]
        if not isinstance(row, list) or len(row) != len(specs):
            raise BenchFrameError(f"{where}: row {r} has {_length(row)} values, the schema has {len(specs)}")
        for spec, column, value in zip(specs, columns, row, strict=True):
            _append(column, spec, value, f"{where}: row {r}, column {spec.name!r}")
    return frame


def _length(row: Any) -> str:
    return str(len(row)) if isinstance(row, list) else "no list of"


def _append(column: frame_pb2.Column, spec: ColumnSpec, value: Any, where: str) -> None:
    kind = spec.type
    if kind == frame_pb2.COLUMN_TYPE_DOUBLE:
        # MLeap writes a missing double as null; the scorer reads NaN as missing.
        column.doubles.append(math.nan if value is None else _number(value, where))
    elif kind == frame_pb2.COLUMN_TYPE_INT64:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BenchFrameError(f"{where}: expected an integer, got {value!r}")
        column.int64s.append(value)
    elif kind == frame_pb2.COLUMN_TYPE_BOOL:
        if not isinstance(value, bool):
            raise BenchFrameError(f"{where}: expected true/false, got {value!r}")
        column.bools.append(value)
    elif kind == frame_pb2.COLUMN_TYPE_STRING:
        if not isinstance(value, str):
            raise BenchFrameError(f"{where}: expected a string, got {value!r}")
        column.strings.append(value)
    else:
        values = value.get("values") if isinstance(value, dict) else value
        if not isinstance(values, list) or len(values) != spec.shape[0]:
            raise BenchFrameError(f"{where}: expected a tensor of {spec.shape[0]} values, got {value!r}")
        column.doubles.extend(_number(v, where) for v in values)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchFrameError(f"{where}: expected a number, got {value!r}")
    return float(value)


def to_dense_frame(obj: dict[str, Any], rows: Sequence[int], where: str = "frame") -> frame_pb2.Frame:
    """The rows at the given indices as one dense block (`Frame.dense`); every field must be a double."""
    specs = column_specs(obj, where)
    if any(s.type != frame_pb2.COLUMN_TYPE_DOUBLE for s in specs):
        raise BenchFrameError(f"{where}: the dense form carries double fields only")
    values = np.empty((len(rows), len(specs)), dtype="<f8")
    for i, r in enumerate(rows):
        row = obj["rows"][r]
        if not isinstance(row, list) or len(row) != len(specs):
            raise BenchFrameError(f"{where}: row {r} has {_length(row)} values, the schema has {len(specs)}")
        # MLeap writes a missing double as null; the scorer reads NaN as missing.
        values[i] = [math.nan if v is None else _number(v, f"{where}: row {r}") for v in row]
    dense = frame_pb2.DenseDoubles(names=[s.name for s in specs], values=values.tobytes())
    return frame_pb2.Frame(rows=len(rows), dense=dense)


def all_doubles(obj: dict[str, Any], where: str = "frame") -> bool:
    """Whether every field of the LeapFrame is a double scalar (so it can travel in the dense form)."""
    return all(s.type == frame_pb2.COLUMN_TYPE_DOUBLE for s in column_specs(obj, where))


def score_requests(
    obj: dict[str, Any], model: str, batch: int, where: str = "frame", dense: bool = False
) -> list[bytes]:
    """Serialized `ScoreRequest`s of `batch` rows each, cycling through the frame's rows.

    `dense`: the rows travel as one float64 block (`Frame.dense`), which needs every field a double.
    Requests are serialized once up front so the load generator spends its time sending, not encoding.
    """
    if batch < 1:
        raise BenchFrameError(f"batch must be at least 1, got {batch}")
    column_specs(obj, where)
    build = to_dense_frame if dense else to_frame
    n = len(obj["rows"])
    requests = []
    # One request per starting row puts every row in every position of a batch.
    for start in range(n):
        frame = build(obj, [(start + i) % n for i in range(batch)], where)
        requests.append(scorer_pb2.ScoreRequest(model=model, frame=frame).SerializeToString())
    return requests


def all_double_scalars(fields: Sequence[frame_pb2.FieldSpec]) -> bool:
    """Whether a model's declared inputs (from `GetModel`) are all double scalars: the dense form's."""
    return bool(fields) and all(f.type == frame_pb2.COLUMN_TYPE_DOUBLE and not f.shape for f in fields)


def requests_from_schema(
    fields: Sequence[frame_pb2.FieldSpec],
    model: str,
    batch: int,
    distinct: int = 64,
    seed: int = 0,
    dense: bool = False,
) -> list[bytes]:
    """Serialized `ScoreRequest`s with random values for a model's declared inputs (from `GetModel`).

    `dense`: the rows travel as one float64 block (`Frame.dense`), which needs every input a double scalar.
    """
    if batch < 1:
        raise BenchFrameError(f"batch must be at least 1, got {batch}")
    if not fields:
        raise BenchFrameError(f"model {model!r} declares no input fields to generate values for")
    if dense and not all_double_scalars(fields):
        raise BenchFrameError(f"model {model!r}: the dense form carries double scalar inputs only")
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(distinct):
        if dense:
            values = rng.normal(size=(batch, len(fields))).astype("<f8")
            block = frame_pb2.DenseDoubles(names=[f.name for f in fields], values=values.tobytes())
            request = scorer_pb2.ScoreRequest(model=model, frame=frame_pb2.Frame(rows=batch, dense=block))
            requests.append(request.SerializeToString())
            continue
        frame = frame_pb2.Frame(rows=batch)
        for field in fields:
            column = frame.columns.add(name=field.name, type=field.type, shape=field.shape)
            width = int(np.prod(field.shape)) if field.shape else 1
            if field.type in (frame_pb2.COLUMN_TYPE_DOUBLE, frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR):
                column.doubles.extend(rng.normal(size=batch * width).tolist())
            elif field.type == frame_pb2.COLUMN_TYPE_INT64:
                column.int64s.extend(rng.integers(0, 100, size=batch).tolist())
            elif field.type == frame_pb2.COLUMN_TYPE_BOOL:
                column.bools.extend(rng.integers(0, 2, size=batch).astype(bool).tolist())
            elif field.type == frame_pb2.COLUMN_TYPE_STRING:
                column.strings.extend(f"v{v}" for v in rng.integers(0, 8, size=batch))
            else:
                raise BenchFrameError(f"input {field.name!r} has no column type to generate values for")
        requests.append(scorer_pb2.ScoreRequest(model=model, frame=frame).SerializeToString())
    return requests
