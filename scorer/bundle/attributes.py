"""A model's attributes (`ml.bundle.Value`s) from model.json or model.pb, read with typed getters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from protos.ml.bundle import bundle_pb2
from scorer.bundle.errors import BundleError

# proto field name -> the key Bundle.ML's JSON uses for it
_PB_TO_JSON = {
    "b": "boolean",
    "i": "int",
    "l": "long",
    "f": "float",
    "d": "double",
    "s": "string",
    "bs": "byte_string",
    "t": "tensor",
    "bt": "basic_type",
    "ds": "data_shape",
    "m": "model",
}
_BASIC = {1: "boolean", 2: "byte", 3: "short", 4: "int", 5: "long", 6: "float", 7: "double", 100: "string"}
# tensor bytes are Java ByteBuffer writes: big-endian
_TENSOR_DTYPE = {
    "boolean": ">u1",
    "byte": ">i1",
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
}
_SHAPES = {0: "scalar", 1: "list", 2: "tensor"}


@dataclass(frozen=True)
class DataShape:
    """Bundle.ML's `DataShape`: scalar, list or tensor (with dimensions when known)."""

    base: str
    nullable: bool
    dimensions: tuple[int, ...] | None


@dataclass(frozen=True)
class _Value:
    kind: str  # "scalar" | "list" | "tensor"
    data: Mapping[str, Any]  # scalar/list: JSON key -> value; tensor: base, values, dims


class Attributes:
    """The attributes of one model; each getter names the file and attribute when it fails."""

    def __init__(self, values: Mapping[str, _Value], where: str):
        self._values = values
        self.where = where

    @staticmethod
    def from_json(obj: Any, where: str) -> Attributes:
        """Attributes from a model.json `attributes` object."""
        if obj is None:
            return Attributes({}, where)
        if not isinstance(obj, Mapping):
            raise BundleError(f"{where}: 'attributes' must be an object")
        values: dict[str, _Value] = {}
        for name, raw in obj.items():
            if not isinstance(raw, Mapping):
                raise BundleError(f"{where}: attribute {name!r} must be an object")
            kind = raw.get("type", "scalar")
            if kind == "tensor":
                values[name] = _Value("tensor", _json_tensor(raw, f"{where}: attribute {name!r}"))
            elif kind in ("scalar", "list"):
                values[name] = _Value(kind, raw)
            else:
                raise BundleError(f"{where}: attribute {name!r} has unknown type {kind!r}")
        return Attributes(values, where)

    @staticmethod
    def from_pb(attrs: bundle_pb2.Attributes, where: str) -> Attributes:
        """Attributes from an `ml.bundle.Attributes` message."""
        values: dict[str, _Value] = {}
        for name, value in attrs.list.items():
            which = value.WhichOneof("v")
            at = f"{where}: attribute {name!r}"
            if which == "t":
                values[name] = _Value("tensor", _pb_tensor(value.t, at))
            elif which == "s":
                data = {_PB_TO_JSON[f.name]: v for f, v in value.s.ListFields()}
                values[name] = _Value("scalar", data)
            elif which == "l":
                data = {_PB_TO_JSON[f.name]: list(v) for f, v in value.l.ListFields()}
                values[name] = _Value("list", data)
            else:
                raise BundleError(f"{at}: empty value")
        return Attributes(values, where)

    def has(self, name: str) -> bool:
        """Whether the attribute is present."""
        return name in self._values

    def names(self) -> list[str]:
        """Attribute names present."""
        return list(self._values)

    def _get(self, name: str, kind: str) -> Mapping[str, Any]:
        value = self._values.get(name)
        if value is None:
            raise BundleError(f"{self.where}: missing attribute {name!r}")
        if value.kind != kind:
            raise BundleError(f"{self.where}: attribute {name!r} is a {value.kind}, expected a {kind}")
        return value.data

    def _scalar(self, name: str, key: str, types: tuple[type, ...], zero: Any) -> Any:
        data = self._get(name, "scalar")
        # proto3 and Bundle.ML's JSON both omit zero values, so a missing key is the zero of its type
        if key not in data and data:
            raise BundleError(f"{self.where}: attribute {name!r} must hold a {key}, got {dict(data)!r}")
        v = data.get(key, zero)
        if isinstance(v, bool) and bool not in types:
            v = None
        if not isinstance(v, types):
            raise BundleError(f"{self.where}: attribute {name!r} must hold a {key}, got {dict(data)!r}")
        return v

    def double(self, name: str) -> float:
        """A scalar double (an integer written where a double belongs is accepted)."""
        return float(self._scalar(name, "double", (float, int), 0.0))

    def long(self, name: str) -> int:
        """A scalar long (MLeap's sklearn writer uses long for counts)."""
        data = self._get(name, "scalar")
        key = "long" if "long" in data or "int" not in data else "int"
        return int(self._scalar(name, key, (int,), 0))

    def string(self, name: str) -> str:
        """A scalar string."""
        return str(self._scalar(name, "string", (str,), ""))

    def boolean(self, name: str) -> bool:
        """A scalar boolean."""
        return bool(self._scalar(name, "boolean", (bool,), False))

    def _list(self, name: str, key: str, types: tuple[type, ...]) -> list[Any]:
        data = self._get(name, "list")
        items = data.get(key, [])
        if not isinstance(items, list) or not all(
            isinstance(x, types) and (bool in types or not isinstance(x, bool)) for x in items
        ):
            raise BundleError(f"{self.where}: attribute {name!r} must be a list of {key}")
        return items

    def double_list(self, name: str) -> np.ndarray:
        """A list of doubles as a float64 array."""
        return np.asarray(self._list(name, "double", (float, int)), dtype=np.float64)

    def long_list(self, name: str) -> list[int]:
        """A list of longs (or ints)."""
        data = self._get(name, "list")
        return list(self._list(name, "long" if "long" in data else "int", (int,)))

    def string_list(self, name: str) -> list[str]:
        """A list of strings."""
        return list(self._list(name, "string", (str,)))

    def data_shapes(self, name: str) -> list[DataShape]:
        """A list of data shapes (e.g. a vector assembler's `input_shapes`)."""
        items = self._list(name, "data_shape", (Mapping, bundle_pb2.DataShape))
        return [_data_shape(x, f"{self.where}: attribute {name!r} item {i}") for i, x in enumerate(items)]

    def data_shape(self, name: str) -> DataShape:
        """One data shape, stored as a scalar (Spark's binarizer) or as a one-item list (sklearn's)."""
        value = self._values.get(name)
        if value is not None and value.kind == "list":
            shapes = self.data_shapes(name)
            if len(shapes) != 1:
                raise BundleError(
                    f"{self.where}: attribute {name!r} must hold one data shape, got {len(shapes)}"
                )
            return shapes[0]
        raw = self._get(name, "scalar").get("data_shape")
        if not isinstance(raw, Mapping | bundle_pb2.DataShape):
            raise BundleError(f"{self.where}: attribute {name!r} must hold a data_shape")
        return _data_shape(raw, f"{self.where}: attribute {name!r}")

    def tensor(self, name: str) -> np.ndarray:
        """A numeric tensor as a float64 array shaped by its dimensions."""
        data = self._get(name, "tensor")
        return np.asarray(data["values"], dtype=np.float64).reshape(data["dims"])

    def vector(self, name: str, size: int | None = None) -> np.ndarray:
        """A one-dimensional tensor of doubles, optionally of a given size."""
        out = self.tensor(name)
        if out.ndim != 1 or (size is not None and out.shape[0] != size):
            want = f"[{size}]" if size is not None else "one dimension"
            raise BundleError(
                f"{self.where}: attribute {name!r} has shape {list(out.shape)}, expected {want}"
            )
        return out

    def finite(self, name: str, values: np.ndarray) -> np.ndarray:
        """`values` unchanged, or a BundleError when any is NaN or infinite."""
        if not np.all(np.isfinite(values)):
            raise BundleError(f"{self.where}: attribute {name!r} holds NaN or infinite values")
        return values


def _json_tensor(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    bases = [b for b in _TENSOR_DTYPE if b in raw]
    if len(bases) != 1:
        raise BundleError(f"{where}: a tensor needs exactly one numeric value list")
    values = raw[bases[0]]
    if not isinstance(values, list) or not all(
        (isinstance(v, int | float) and not isinstance(v, bool)) or bases[0] == "boolean" for v in values
    ):
        raise BundleError(f"{where}: tensor values must be a list of numbers")
    dims = _dims(raw.get("shape"), where)
    return {"base": bases[0], "values": values, "dims": _check_size(dims, len(values), where)}


def _pb_tensor(t: bundle_pb2.Tensor, where: str) -> dict[str, Any]:
    base = _BASIC.get(t.base)
    if base is None or base not in _TENSOR_DTYPE:
        raise BundleError(f"{where}: unsupported tensor base type {t.base}")
    dtype = np.dtype(_TENSOR_DTYPE[base])
    if len(t.value) % dtype.itemsize:
        raise BundleError(f"{where}: tensor bytes are not a whole number of {base} values")
    values = np.frombuffer(t.value, dtype=dtype).astype(np.float64)
    dims = tuple(d.size for d in t.shape.dimensions)
    return {"base": base, "values": values, "dims": _check_size(dims, values.shape[0], where)}


def _dims(shape: Any, where: str) -> tuple[int, ...]:
    if not isinstance(shape, Mapping) or not isinstance(shape.get("dimensions"), list):
        raise BundleError(f"{where}: tensor needs shape.dimensions")
    dims = []
    for d in shape["dimensions"]:
        size = d.get("size", 0) if isinstance(d, Mapping) else None
        if not isinstance(size, int) or isinstance(size, bool):
            raise BundleError(f"{where}: tensor dimension sizes must be integers")
        dims.append(size)
    return tuple(dims)


def _check_size(dims: tuple[int, ...], n: int, where: str) -> tuple[int, ...]:
    # Bundle.ML writes -1 for an unknown dimension; at most one can be inferred
    if dims.count(-1) == 1:
        known = math.prod(d for d in dims if d != -1)
        if known and n % known == 0:
            dims = tuple(n // known if d == -1 else d for d in dims)
    if any(d < 0 for d in dims) or math.prod(dims) != n:
        raise BundleError(f"{where}: tensor dimensions {list(dims)} do not match {n} values")
    return dims


def _data_shape(raw: Any, where: str) -> DataShape:
    if isinstance(raw, bundle_pb2.DataShape):
        dims = tuple(d.size for d in raw.tensor_shape.dimensions) if raw.HasField("tensor_shape") else None
        return DataShape(_SHAPES.get(raw.base, "scalar"), raw.is_nullable, dims)
    base = raw.get("base", "scalar")
    if base not in ("scalar", "list", "tensor"):
        raise BundleError(f"{where}: unknown data shape {base!r}")
    nullable = raw.get("isNullable", raw.get("is_nullable", False))
    ts = raw.get("tensorShape", raw.get("tensor_shape"))
    dims = _dims(ts, where) if ts is not None else None
    return DataShape(base, bool(nullable), dims)
