"""Bundle.ML attribute values and their two renderings: protobuf messages and MLeap's JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from protos.ml.bundle import bundle_pb2 as pb

_BASIC_JSON = {
    pb.BOOLEAN: "boolean",
    pb.BYTE: "byte",
    pb.SHORT: "short",
    pb.INT: "int",
    pb.LONG: "long",
    pb.FLOAT: "float",
    pb.DOUBLE: "double",
    pb.STRING: "string",
    pb.BYTE_STRING: "byte_string",
}
_SHAPE_JSON = {pb.SCALAR: "scalar", pb.LIST: "list", pb.TENSOR: "tensor"}


def double(value: float) -> pb.Value:
    """A scalar double attribute."""
    return pb.Value(s=pb.Scalar(d=float(value)))


def long(value: int) -> pb.Value:
    """A scalar long attribute."""
    return pb.Value(s=pb.Scalar(l=int(value)))


def string(value: str) -> pb.Value:
    """A scalar string attribute."""
    return pb.Value(s=pb.Scalar(s=value))


def boolean(value: bool) -> pb.Value:
    """A scalar boolean attribute."""
    return pb.Value(s=pb.Scalar(b=bool(value)))


def double_list(values: Sequence[float] | np.ndarray) -> pb.Value:
    """A list-of-doubles attribute."""
    return pb.Value(l=pb.List(d=[float(v) for v in values]))


def string_list(values: Sequence[str]) -> pb.Value:
    """A list-of-strings attribute."""
    return pb.Value(l=pb.List(s=list(values)))


def int_list(values: Sequence[int]) -> pb.Value:
    """A list-of-ints attribute."""
    return pb.Value(l=pb.List(i=[int(v) for v in values]))


def tensor(values: np.ndarray, dimensions: Sequence[int]) -> pb.Value:
    """A dense double tensor; MLeap stores the elements as big-endian doubles (java.nio's default order)."""
    raw = np.ascontiguousarray(values, dtype=">f8").tobytes()
    shape = pb.TensorShape(dimensions=[pb.TensorDimension(size=int(d)) for d in dimensions])
    return pb.Value(t=pb.Tensor(base=pb.DOUBLE, shape=shape, value=raw))


def vector(values: np.ndarray | Sequence[float]) -> pb.Value:
    """A dense double vector: a one-dimensional tensor."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return tensor(arr, [arr.shape[0]])


def scalar_shape() -> pb.DataShape:
    """The data shape of a non-nullable scalar."""
    return pb.DataShape(base=pb.SCALAR, is_nullable=False)


def tensor_shape(size: int) -> pb.DataShape:
    """The data shape of a non-nullable vector of `size` elements."""
    dims = pb.TensorShape(dimensions=[pb.TensorDimension(size=size)])
    return pb.DataShape(base=pb.TENSOR, is_nullable=False, tensor_shape=dims)


def data_shape(shape: pb.DataShape) -> pb.Value:
    """A scalar attribute holding one data shape."""
    return pb.Value(s=pb.Scalar(ds=shape))


def data_shape_list(shapes: Sequence[pb.DataShape]) -> pb.Value:
    """A list attribute of data shapes."""
    return pb.Value(l=pb.List(ds=list(shapes)))


def _tensor_shape_json(shape: pb.TensorShape) -> dict[str, Any]:
    return {"dimensions": [{"size": d.size, "name": d.name} for d in shape.dimensions]}


def _data_shape_json(shape: pb.DataShape) -> dict[str, Any]:
    out: dict[str, Any] = {"base": _SHAPE_JSON[shape.base], "isNullable": shape.is_nullable}
    if shape.HasField("tensor_shape"):
        out["tensorShape"] = _tensor_shape_json(shape.tensor_shape)
    return out


def _tensor_json(t: pb.Tensor) -> dict[str, Any]:
    if t.base != pb.DOUBLE:
        raise ValueError(f"rtscore writes only double tensors, not {_BASIC_JSON.get(t.base, t.base)}")
    values = np.frombuffer(t.value, dtype=">f8").tolist()
    return {"double": values, "shape": _tensor_shape_json(t.shape)}


def _scalar_json(s: pb.Scalar) -> dict[str, Any]:
    # MLeap's JSON writer names the set field; rtscore writes the field even when it holds zero so
    # readers never have to infer a missing zero.
    fields = {f.name: v for f, v in s.ListFields()}
    if "ds" in fields:
        return {"data_shape": _data_shape_json(s.ds)}
    if "t" in fields:
        return {"tensor": _tensor_json(s.t)}
    if "s" in fields:
        return {"string": s.s}
    if "b" in fields:
        return {"boolean": True}
    if "l" in fields:
        return {"long": s.l}
    if "i" in fields:
        return {"int": s.i}
    if "d" in fields:
        return {"double": s.d}
    return {}


def value_json(value: pb.Value) -> dict[str, Any]:
    """Render one attribute value as MLeap's JSON writer does."""
    which = value.WhichOneof("v")
    if which == "t":
        return {"type": "tensor", **_tensor_json(value.t)}
    if which == "l":
        lst = value.l
        out: dict[str, Any] = {"type": "list"}
        if lst.b:
            out["boolean"] = list(lst.b)
        if lst.i:
            out["int"] = list(lst.i)
        if lst.l:
            out["long"] = list(lst.l)
        if lst.d:
            out["double"] = list(lst.d)
        if lst.s:
            out["string"] = list(lst.s)
        if lst.ds:
            out["data_shape"] = [_data_shape_json(ds) for ds in lst.ds]
        return out
    return _scalar_json(value.s)


def model_json(model: pb.Model) -> dict[str, Any]:
    """Render `model.json`: the op name and its attributes."""
    attrs = {name: value_json(model.attributes.list[name]) for name in sorted(model.attributes.list)}
    return {"op": model.op, "attributes": attrs}


def node_json(node: pb.Node) -> dict[str, Any]:
    """Render `node.json`: the node name and its port bindings."""
    return {
        "name": node.name,
        "shape": {
            "inputs": [{"name": s.name, "port": s.port} for s in node.shape.inputs],
            "outputs": [{"name": s.name, "port": s.port} for s in node.shape.outputs],
        },
    }
