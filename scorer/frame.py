"""LeapFrame: a columnar batch of rows with MLeap's schema, held as numpy arrays."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtscore.errors import InvalidArgument

BASES = ("boolean", "byte", "short", "int", "long", "float", "double", "string", "byte_string")
_INTEGRAL = ("byte", "short", "int", "long")
# MLeap's JSON LeapFrame spells `int` as "integer"; every other base keeps its name.
_JSON_NAME = {"int": "integer"}
_FROM_JSON_NAME = {"integer": "int", "int": "int"}


class FrameError(InvalidArgument):
    """A frame that is malformed or does not fit what a bundle expects; names the column."""


@dataclass(frozen=True)
class DataType:
    """An MLeap data type: base name, shape ("scalar", "list", "tensor"), tensor dimensions, nullability."""

    base: str
    shape: str = "scalar"
    dimensions: tuple[int, ...] | None = None
    nullable: bool = True

    @staticmethod
    def scalar(base: str, nullable: bool = True) -> DataType:
        """A scalar of `base`."""
        return DataType(base, "scalar", None, nullable)

    @staticmethod
    def tensor(base: str, dimensions: tuple[int, ...] | None, nullable: bool = True) -> DataType:
        """A tensor of `base` with the given dimensions (None when unknown)."""
        return DataType(base, "tensor", dimensions, nullable)

    def to_mleap_json(self) -> Any:
        """This type as MLeap writes it in a LeapFrame schema."""
        name = _JSON_NAME.get(self.base, self.base)
        if self.shape == "scalar":
            if self.nullable:
                return name
            return {"type": "basic", "base": name, "isNullable": False}
        out: dict[str, Any] = {"type": self.shape, "base": self.base}
        if not self.nullable:
            out["isNullable"] = False
        if self.shape == "tensor" and self.dimensions is not None:
            out["dimensions"] = list(self.dimensions)
        return out

    @staticmethod
    def from_mleap_json(obj: Any, where: str) -> DataType:
        """Parse a LeapFrame schema type; `where` names the field in errors."""
        if isinstance(obj, str):
            return DataType.scalar(_base_name(obj, where))
        if not isinstance(obj, dict):
            raise FrameError(f"{where}: type must be a string or an object, got {obj!r}")
        kind = obj.get("type")
        base = _base_name(obj.get("base"), where)
        nullable = obj.get("isNullable", True)
        if not isinstance(nullable, bool):
            raise FrameError(f"{where}: isNullable must be a boolean")
        if kind == "basic":
            return DataType.scalar(base, nullable)
        if kind == "tensor":
            dims = obj.get("dimensions")
            if dims is not None and (
                not isinstance(dims, list) or not all(isinstance(d, int) and d >= 0 for d in dims)
            ):
                raise FrameError(f"{where}: tensor dimensions must be a list of non-negative integers")
            return DataType.tensor(base, tuple(dims) if dims is not None else None, nullable)
        if kind == "list":
            return DataType(base, "list", None, nullable)
        raise FrameError(f"{where}: unsupported type {kind!r} (expected basic, tensor or list)")


def _base_name(name: Any, where: str) -> str:
    if name in _FROM_JSON_NAME:
        return _FROM_JSON_NAME[name]
    if isinstance(name, str) and name in BASES:
        return name
    raise FrameError(f"{where}: unknown base type {name!r}")


@dataclass(frozen=True)
class Field:
    """A named, typed column."""

    name: str
    dtype: DataType

    def to_mleap_json(self) -> dict[str, Any]:
        """This field as an entry of MLeap's schema `fields` list."""
        return {"name": self.name, "type": self.dtype.to_mleap_json()}


class LeapFrame:
    """An ordered set of typed columns of equal length; transforms return new frames sharing arrays."""

    __slots__ = ("_columns", "_fields", "_index", "_sparse", "n_rows")

    def __init__(
        self,
        fields: Sequence[Field],
        columns: Sequence[np.ndarray],
        n_rows: int | None = None,
        sparse: Mapping[str, np.ndarray] | None = None,
    ):
        if len(fields) != len(columns):
            raise FrameError(f"{len(fields)} fields but {len(columns)} columns")
        self._fields = tuple(fields)
        self._columns = tuple(columns)
        self._index = {f.name: i for i, f in enumerate(self._fields)}
        if len(self._index) != len(self._fields):
            names = [f.name for f in self._fields]
            dup = next(n for n in names if names.count(n) > 1)
            raise FrameError(f"column {dup!r} appears twice")
        if n_rows is None:
            n_rows = int(self._columns[0].shape[0]) if self._columns else 0
        for f, c in zip(self._fields, self._columns, strict=True):
            if c.shape[0] != n_rows:
                raise FrameError(f"column {f.name!r} has {c.shape[0]} rows, expected {n_rows}")
        self.n_rows = n_rows
        self._sparse = dict(sparse or {})

    def sparse_rows(self, name: str) -> np.ndarray | None:
        """For a tensor column, which rows MLeap holds (and writes) as sparse vectors; None = all dense."""
        return self._sparse.get(name)

    @property
    def fields(self) -> tuple[Field, ...]:
        """The schema, in column order."""
        return self._fields

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [f.name for f in self._fields]

    def has(self, name: str) -> bool:
        """Whether a column of that name exists."""
        return name in self._index

    def has_all(self, names: frozenset[str]) -> bool:
        """Whether every one of `names` is a column."""
        return names <= self._index.keys()

    def field(self, name: str) -> Field:
        """The field named `name`."""
        try:
            return self._fields[self._index[name]]
        except KeyError:
            raise FrameError(f"frame has no column {name!r}") from None

    def column(self, name: str) -> np.ndarray:
        """The array holding column `name`."""
        try:
            return self._columns[self._index[name]]
        except KeyError:
            raise FrameError(f"frame has no column {name!r}") from None

    def with_column(self, field: Field, array: np.ndarray) -> LeapFrame:
        """A frame with `field` appended (or replaced, when the name exists)."""
        return self.with_columns(((field, array),))

    def with_columns(
        self, pairs: Iterable[tuple[Field, np.ndarray]], sparse: Mapping[str, np.ndarray] | None = None
    ) -> LeapFrame:
        """A frame with several columns appended (or replaced, when a name exists) at once.

        `sparse` marks, per new tensor column, the rows MLeap would hold as sparse vectors.
        """
        fields = list(self._fields)
        columns = list(self._columns)
        index = self._index.copy()
        layout = self._sparse
        n = self.n_rows
        for f, a in pairs:
            if a.shape[0] != n:
                raise FrameError(f"column {f.name!r} has {a.shape[0]} rows, expected {n}")
            if f.name in layout:  # a replaced column forgets the old layout
                layout = {k: v for k, v in layout.items() if k != f.name}
            i = index.get(f.name)
            if i is None:
                index[f.name] = len(fields)
                fields.append(f)
                columns.append(a)
            else:
                fields[i] = f
                columns[i] = a
        # every op appends through here: skip __init__'s whole-frame checks, the rest is already valid
        out = LeapFrame.__new__(LeapFrame)
        if sparse:
            layout = {**layout, **sparse}
        out._fields, out._columns, out._index, out.n_rows = tuple(fields), tuple(columns), index, n
        out._sparse = layout
        return out

    def select(self, names: Sequence[str]) -> LeapFrame:
        """A frame with only the named columns, in that order."""
        fields = [self.field(n) for n in names]
        sparse = {n: self._sparse[n] for n in names if n in self._sparse}
        return LeapFrame(fields, [self.column(n) for n in names], self.n_rows, sparse)

    def take(self, rows: np.ndarray) -> LeapFrame:
        """A frame with only the rows selected by a boolean mask or index array."""
        columns = [c[rows] for c in self._columns]
        n = int(np.count_nonzero(rows)) if rows.dtype == np.bool_ else int(rows.shape[0])
        return LeapFrame(self._fields, columns, n, {k: v[rows] for k, v in self._sparse.items()})

    @staticmethod
    def from_mleap_json(obj: Any) -> LeapFrame:
        """Build a frame from MLeap's JSON LeapFrame (`{"schema": {"fields": [...]}, "rows": [...]}`)."""
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
            f.name: np.array(
                [isinstance(row[i], Mapping) and "indices" in row[i] for row in rows], dtype=bool
            )
            for i, f in enumerate(fields)
            if f.dtype.shape == "tensor"
            and any(isinstance(row[i], Mapping) and "indices" in row[i] for row in rows)
        }
        return LeapFrame(fields, columns, len(rows), sparse)

    def to_mleap_json(self) -> dict[str, Any]:
        """This frame in MLeap's JSON LeapFrame format."""
        per_column = [
            _column_to_json(f, c, self._sparse.get(f.name))
            for f, c in zip(self._fields, self._columns, strict=True)
        ]
        rows = [list(values) for values in zip(*per_column, strict=True)] if per_column else []
        if not per_column:
            rows = [[] for _ in range(self.n_rows)]
        return {"schema": {"fields": [f.to_mleap_json() for f in self._fields]}, "rows": rows}


def numpy_dtype(base: str) -> type:
    """The numpy dtype rtscore uses for a scalar column of MLeap base `base`."""
    if base in ("float", "double"):
        return np.float64
    if base in _INTEGRAL:
        return np.int64
    if base == "boolean":
        return np.bool_
    return np.object_


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
        if dt.base not in ("double", "float", *_INTEGRAL):
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


def compressed_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows Spark's `Vector.compressed` keeps sparse: when 1.5 * (non-zeros + 1) < size."""
    if vectors.shape[0] == 1:  # the single-row path: one count instead of an axis reduction
        return _ONE_ROW if 1.5 * (np.count_nonzero(vectors) + 1.0) < vectors.shape[1] else _NO_ROW
    return 1.5 * (np.count_nonzero(vectors, axis=1) + 1.0) < vectors.shape[1]


# shared, read-only single-row masks: frames never write to their layout masks
_ONE_ROW = np.ones(1, dtype=np.bool_)
_NO_ROW = np.zeros(1, dtype=np.bool_)
_ONE_ROW.flags.writeable = False
_NO_ROW.flags.writeable = False


def all_rows(n: int) -> np.ndarray:
    """A mask selecting all `n` rows."""
    return _ONE_ROW if n == 1 else np.ones(n, dtype=np.bool_)


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
