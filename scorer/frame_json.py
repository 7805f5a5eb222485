"""MLeap's JSON LeapFrame, read into and written from a `LeapFrame`: rows of values in, columns out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scorer.frame import INTEGRAL_BASES, DataType, Field, FrameError, LeapFrame, numpy_dtype


def frame_from_mleap_json(obj: Any) -> LeapFrame:
    """A frame from MLeap's JSON LeapFrame (`{"schema": {"fields": [...]}, "rows": [...]}`)."""
    if not isinstance(obj, Mapping):
        raise FrameError("a LeapFrame must be a JSON object with 'schema' and 'rows'")
    schema = obj.get("schema")
    rows = obj.get("rows")
    if not isinstance(schema, Mapping) or not isinstance(schema.get("fields"), list):
        raise FrameError("LeapFrame 'schema' must be an object with a 'fields' list")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise FrameError("LeapFrame 'rows' must be a list of lists")
    fields: list[Field] = []
    for i, f in enumerate(schema["fields"]):
        if not isinstance(f, Mapping) or not isinstance(f.get("name"), str):
            raise FrameError(f"schema field {i} must be an object with a string 'name'")
        fields.append(Field(f["name"], DataType.from_mleap_json(f.get("type"), f"column {f['name']!r}")))
    for r, row in enumerate(rows):
        if len(row) != len(fields):
            raise FrameError(f"row {r} has {len(row)} values, the schema has {len(fields)} fields")
    columns = [_column_from_rows(f, [row[i] for row in rows]) for i, f in enumerate(fields)]
    sparse = {
        f.name: np.array([isinstance(row[i], Mapping) and "indices" in row[i] for row in rows], dtype=bool)
        for i, f in enumerate(fields)
        if f.dtype.shape == "tensor"
        and any(isinstance(row[i], Mapping) and "indices" in row[i] for row in rows)
    }
    return LeapFrame(fields, columns, len(rows), sparse)


def frame_to_mleap_json(frame: LeapFrame) -> dict[str, Any]:
    """`frame` in MLeap's JSON LeapFrame format."""
    per_column = [_column_to_json(f, frame.column(f.name), frame.sparse_rows(f.name)) for f in frame.fields]
    rows = [list(values) for values in zip(*per_column, strict=True)] if per_column else []
    if not per_column:
        rows = [[] for _ in range(frame.n_rows)]
    return {"schema": {"fields": [f.to_mleap_json() for f in frame.fields]}, "rows": rows}


def _column_from_rows(field: Field, values: list[Any]) -> np.ndarray:
    dt = field.dtype
    where = f"column {field.name!r}"
    if dt.shape == "scalar":
        kind = numpy_dtype(dt.base)
        if kind is np.object_:
            if not all(v is None or isinstance(v, str) for v in values):
                raise FrameError(f"{where}: expected strings")
            return np.array(values, dtype=object)
        if kind is np.float64:
            if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
                raise FrameError(f"{where}: expected numbers")
            # null is NaN: MLeap's imputers and trees treat a missing double as NaN
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if kind is np.int64:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise FrameError(f"{where}: expected integers (nulls are not supported in integer columns)")
            return np.array(values, dtype=np.int64)
        if not all(isinstance(v, bool) for v in values):
            raise FrameError(f"{where}: expected booleans")
        return np.array(values, dtype=np.bool_)
    if dt.shape == "tensor":
        if dt.base not in ("double", "float", *INTEGRAL_BASES):
            raise FrameError(f"{where}: only numeric tensors are supported, got {dt.base}")
        size = dt.dimensions[0] if dt.dimensions else None
        dense: list[list[float]] = []
        for r, v in enumerate(values):
            vec = _tensor_values(v, f"{where} row {r}")
            if size is None:
                size = len(vec)
            if len(vec) != size:
                raise FrameError(f"{where} row {r}: tensor has {len(vec)} values, expected {size}")
            dense.append(vec)
        return np.array(dense, dtype=np.float64).reshape(len(values), size or 0)
    raise FrameError(f"{where}: {dt.shape} columns are not supported")


def _tensor_values(v: Any, where: str) -> list[float]:
    if not isinstance(v, Mapping) or not isinstance(v.get("values"), list):
        raise FrameError(f"{where}: a tensor must be an object with 'values' and 'dimensions'")
    values = v["values"]
    dims = v.get("dimensions")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in values):
        raise FrameError(f"{where}: tensor values must be numbers")
    indices = v.get("indices")
    if indices is None:
        return [float(x) for x in values]
    # a sparse tensor: MLeap writes `indices` as a list of one-element index lists for vectors
    if not isinstance(dims, list) or len(dims) != 1 or not isinstance(dims[0], int):
        raise FrameError(f"{where}: a sparse tensor needs one integer dimension")
    dense = [0.0] * dims[0]
    for idx, x in zip(indices, values, strict=False):
        i = idx[0] if isinstance(idx, list) and idx else idx
        if not isinstance(i, int) or not 0 <= i < dims[0]:
            raise FrameError(f"{where}: sparse index {idx!r} out of range")
        dense[i] = float(x)
    return dense


def _column_to_json(field: Field, column: np.ndarray, sparse: np.ndarray | None) -> list[Any]:
    dt = field.dtype
    if dt.shape == "tensor":
        dims = [int(column.shape[1])]
        if sparse is None:
            return [{"values": row, "dimensions": dims} for row in column.tolist()]
        out: list[Any] = []
        for row, is_sparse in zip(column, sparse.tolist(), strict=True):
            if is_sparse:
                nz = np.flatnonzero(row)
                out.append(
                    {"indices": [[i] for i in nz.tolist()], "values": row[nz].tolist(), "dimensions": dims}
                )
            else:
                out.append({"values": row.tolist(), "dimensions": dims})
        return out
    if column.dtype == np.float64:
        # JSON has no NaN; MLeap's frames carry a missing double as null
        return [None if v != v else v for v in column.tolist()]
    return column.tolist()
