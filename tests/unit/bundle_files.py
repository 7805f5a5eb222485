"""Writes small Bundle.ML bundles (json or protobuf, zip or directory) for the bundle and op tests."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protos.ml.bundle import bundle_pb2, dtree_pb2
from scorer.bundle import Bundle
from scorer.frame import DataType, Field, LeapFrame

# a tree in pre-order: ("split", feature, threshold) or ("leaf", [values])
TreeSpec = list[tuple[Any, ...]]


@dataclass
class NodeSpec:
    """One node: op, attributes as (kind, value) pairs, sockets, children and tree files."""

    name: str
    op: str
    attrs: dict[str, tuple[str, Any]] = field(default_factory=dict)
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    children: list[NodeSpec] = field(default_factory=list)
    tree: TreeSpec | None = None
    # sub-models without node files (the trees of an ensemble): folder name -> (op, attrs, tree)
    models: dict[str, tuple[str, dict[str, tuple[str, Any]], TreeSpec]] = field(default_factory=dict)


def _json_value(kind: str, v: Any) -> dict[str, Any]:
    if kind in ("double", "long", "string", "boolean"):
        return {kind: v}
    if kind.endswith("_list"):
        return {"type": "list", kind[: -len("_list")]: list(v)}
    if kind == "tensor":
        arr = np.asarray(v, dtype=np.float64)
        dims = [{"size": int(d), "name": ""} for d in arr.shape]
        return {"type": "tensor", "double": arr.reshape(-1).tolist(), "shape": {"dimensions": dims}}
    if kind == "shapes":
        shapes = []
        for base, size in v:
            s: dict[str, Any] = {"base": base, "isNullable": False}
            if size is not None:
                s["tensorShape"] = {"dimensions": [{"size": size, "name": ""}]}
            shapes.append(s)
        return {"type": "list", "data_shape": shapes}
    raise ValueError(kind)


def _pb_value(kind: str, v: Any) -> bundle_pb2.Value:
    out = bundle_pb2.Value()
    scalar = {"double": "d", "long": "l", "string": "s", "boolean": "b"}
    if kind in scalar:
        setattr(out.s, scalar[kind], v)
    elif kind == "double_list":
        out.l.d.extend(v)
    elif kind == "string_list":
        out.l.s.extend(v)
    elif kind == "long_list":
        out.l.l.extend(v)
    elif kind == "tensor":
        arr = np.asarray(v, dtype=np.float64)
        out.t.base = bundle_pb2.DOUBLE
        for d in arr.shape:
            out.t.shape.dimensions.add(size=int(d))
        out.t.value = arr.astype(">f8").tobytes()
    elif kind == "shapes":
        for base, size in v:
            ds = out.l.ds.add(base={"scalar": 0, "list": 1, "tensor": 2}[base])
            if size is not None:
                ds.tensor_shape.dimensions.add(size=size)
    else:
        raise ValueError(kind)
    return out


def tree_bytes(tree: TreeSpec, fmt: str) -> bytes:
    """A tree.json (one node per line) or tree.pb (length-delimited nodes)."""
    if fmt == "json":
        lines = []
        for node in tree:
            if node[0] == "split":
                split = {"type": "continuous", "featureIndex": node[1], "threshold": node[2]}
                lines.append(json.dumps({"type": "internal", "split": split}))
            else:
                lines.append(json.dumps({"type": "leaf", "values": list(node[1])}))
        return ("\n".join(lines) + "\n").encode()
    out = bytearray()
    for node in tree:
        msg = dtree_pb2.Node()
        if node[0] == "split":
            msg.internal.split.continuous.feature_index = node[1]
            msg.internal.split.continuous.threshold = node[2]
        else:
            msg.leaf.values.extend(node[1])
        data = msg.SerializeToString()
        n = len(data)
        while n >= 0x80:  # varint length prefix, as protobuf's writeDelimitedTo does
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        out += data
    return bytes(out)


def _model_bytes(op: str, attrs: dict[str, tuple[str, Any]], fmt: str) -> bytes:
    if fmt == "json":
        body = {"op": op, "attributes": {k: _json_value(*v) for k, v in attrs.items()}}
        return json.dumps(body).encode()
    model = bundle_pb2.Model(op=op)
    for k, v in attrs.items():
        model.attributes.list[k].CopyFrom(_pb_value(*v))
    return model.SerializeToString()


def _node_bytes(node: NodeSpec, fmt: str) -> bytes:
    if fmt == "json":
        shape = {
            "inputs": [{"port": p, "name": n} for p, n in node.inputs],
            "outputs": [{"port": p, "name": n} for p, n in node.outputs],
        }
        return json.dumps({"name": node.name, "shape": shape}).encode()
    msg = bundle_pb2.Node(name=node.name)
    for p, n in node.inputs:
        msg.shape.inputs.add(port=p, name=n)
    for p, n in node.outputs:
        msg.shape.outputs.add(port=p, name=n)
    return msg.SerializeToString()


def bundle_files(root: NodeSpec, fmt: str = "json") -> dict[str, bytes]:
    """Every file of a bundle whose root node is `root`, by relative path."""
    ext = "json" if fmt == "json" else "pb"
    files = {
        "bundle.json": json.dumps(
            {
                "uid": "00000000-0000-0000-0000-000000000000",
                "name": root.name,
                "format": fmt,
                "version": "0.20.0",
                "timestamp": "2026-01-01T00:00:00",
            }
        ).encode()
    }

    def add(node: NodeSpec, directory: str) -> None:
        attrs = dict(node.attrs)
        if node.children:
            attrs["nodes"] = ("string_list", [c.name for c in node.children])
        files[f"{directory}/model.{ext}"] = _model_bytes(node.op, attrs, fmt)
        files[f"{directory}/node.{ext}"] = _node_bytes(node, fmt)
        if node.tree is not None:
            files[f"{directory}/tree.{ext}"] = tree_bytes(node.tree, fmt)
        for sub, (op, sub_attrs, tree) in node.models.items():
            files[f"{directory}/{sub}/model.{ext}"] = _model_bytes(op, sub_attrs, fmt)
            files[f"{directory}/{sub}/tree.{ext}"] = tree_bytes(tree, fmt)
        for child in node.children:
            add(child, f"{directory}/{child.name}.node")

    add(root, "root")
    return files


def write_files(files: dict[str, bytes], out: Path, zipped: bool) -> Path:
    """Write the files as a directory, or as a zip when `zipped`."""
    if zipped:
        out = out.with_suffix(".zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        return out
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    return out


def write_bundle(root: NodeSpec, out: Path, fmt: str = "json", zipped: bool = False) -> Path:
    """Write a bundle rooted at `root`; returns its path (a .zip when zipped)."""
    return write_files(bundle_files(root, fmt), out, zipped)


def pipeline(*children: NodeSpec, name: str = "pipeline") -> NodeSpec:
    """A root pipeline of the given nodes."""
    return NodeSpec(name, "pipeline", children=list(children))


def doubles_frame(**columns: np.ndarray) -> LeapFrame:
    """A frame of scalar double columns (1-d arrays) and double tensors (2-d arrays)."""
    fields = []
    arrays = []
    for name, arr in columns.items():
        a = np.asarray(arr, dtype=np.float64)
        dt = DataType.scalar("double") if a.ndim == 1 else DataType.tensor("double", (a.shape[1],))
        fields.append(Field(name, dt))
        arrays.append(a)
    return LeapFrame(fields, arrays)


FORMATS = [("json", False), ("json", True), ("protobuf", False), ("protobuf", True)]


def load(root: NodeSpec, tmp_path: Path, fmt: str = "json", zipped: bool = False) -> Bundle:
    """Write `root` as a bundle under tmp_path and load it with a cache of its own."""
    from scorer.bundle import load_bundle
    from scorer.trees import ForestCache

    out = tmp_path / f"bundle-{fmt}-{'zip' if zipped else 'dir'}"
    out.mkdir(exist_ok=True)
    return load_bundle(write_bundle(root, out, fmt, zipped), cache=ForestCache(tmp_path / "cache"))
