"""LeapFrame: a columnar batch of rows with MLeap's schema, held as numpy arrays."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtscore.errors import InvalidArgument

BASES = ("boolean", "byte", "short", "int", "long", "float", "double", "string", "byte_string")
INTEGRAL_BASES = ("byte", "short", "int", "long")
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

    @staticmethod
    def of_checked(
        fields: tuple[Field, ...], columns: tuple[np.ndarray, ...], n_rows: int, index: dict[str, int]
    ) -> LeapFrame:
        """A frame from parts the caller has already checked: distinct names, `index` mapping each to
        its position (never changed afterwards: frames share it), every column `n_rows` long."""
        out = LeapFrame.__new__(LeapFrame)
        out._fields, out._columns, out._index, out.n_rows, out._sparse = fields, columns, index, n_rows, {}
        return out

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
        from scorer.frame_json import frame_from_mleap_json

        return frame_from_mleap_json(obj)

    def to_mleap_json(self) -> dict[str, Any]:
        """This frame in MLeap's JSON LeapFrame format."""
        from scorer.frame_json import frame_to_mleap_json

        return frame_to_mleap_json(self)


def numpy_dtype(base: str) -> type:
    """The numpy dtype rtscore uses for a scalar column of MLeap base `base`."""
    if base in ("float", "double"):
        return np.float64
    if base in INTEGRAL_BASES:
        return np.int64
    if base == "boolean":
        return np.bool_
    return np.object_


def compressed_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows Spark's `Vector.compressed` keeps sparse: when 1.5 * (non-zeros + 1) < size."""
    if vectors.shape[0] == 1:  # the single-row path: one count, compared in Python ints (numpy scalars
        # are slow to compute with): 1.5 * (nnz + 1) < size exactly when 3 * (nnz + 1) < 2 * size
        return _ONE_ROW if 3 * (int(np.count_nonzero(vectors)) + 1) < 2 * vectors.shape[1] else _NO_ROW
    return 1.5 * (np.count_nonzero(vectors, axis=1) + 1.0) < vectors.shape[1]


# shared, read-only single-row masks: frames never write to their layout masks
_ONE_ROW = np.ones(1, dtype=np.bool_)
_NO_ROW = np.zeros(1, dtype=np.bool_)
_ONE_ROW.flags.writeable = False
_NO_ROW.flags.writeable = False


def all_rows(n: int) -> np.ndarray:
    """A mask selecting all `n` rows."""
    return _ONE_ROW if n == 1 else np.ones(n, dtype=np.bool_)
