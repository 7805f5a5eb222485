"""Bundle.ML's files: bundle.json, and each node's node.json|pb and model.json|pb, into ops."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from protos.ml.bundle import bundle_pb2
from scorer.bundle.archive import BundleArchive
from scorer.bundle.attributes import Attributes
from scorer.bundle.errors import BundleError
from scorer.bundle.op import NodeContext, Op

if TYPE_CHECKING:
    from scorer.trees import ForestCache

_MAX_DEPTH = 64  # nested pipelines deeper than this are a hostile bundle, not a model


def read_info(archive: BundleArchive) -> dict[str, Any]:
    """bundle.json, checked: name, format ("json" or "protobuf"), version, uid, timestamp."""
    where = f"{archive.label}: bundle.json"
    info = _json(archive.read("bundle.json"), where)
    if not isinstance(info, dict):
        raise BundleError(f"{where}: must be a JSON object")
    fmt = info.get("format")
    if fmt not in ("json", "protobuf"):
        raise BundleError(f"{where}: field 'format' must be 'json' or 'protobuf', got {fmt!r}")
    for key in ("name", "version"):
        if not isinstance(info.get(key), str):
            raise BundleError(f"{where}: field {key!r} must be a string")
    return info


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{where}: invalid JSON ({err})") from None


class BundleReader:
    """Reads the node tree of one bundle and builds its ops through the registry."""

    def __init__(self, archive: BundleArchive, fmt: str, cache: ForestCache | None):
        self.archive = archive
        self.format = fmt
        self.cache = cache
        self.ext = "json" if fmt == "json" else "pb"

    def read_model(self, directory: str) -> tuple[str, Attributes]:
        """The op name and attributes of the model stored in `directory`."""
        rel = BundleArchive.join(directory, f"model.{self.ext}")
        where = f"{self.archive.label}: {rel}"
        data = self.archive.read(rel)
        if self.format == "json":
            obj = _json(data, where)
            if not isinstance(obj, dict) or not isinstance(obj.get("op"), str):
                raise BundleError(f"{where}: must be an object with a string 'op'")
            return obj["op"], Attributes.from_json(obj.get("attributes"), where)
        model = bundle_pb2.Model()
        try:
            model.ParseFromString(data)
        except DecodeError as err:
            raise BundleError(f"{where}: not an ml.bundle.Model message ({err})") from None
        if not model.op:
            raise BundleError(f"{where}: field 'op' is empty")
        return model.op, Attributes.from_pb(model.attributes, where)

    def read_shape(self, directory: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
        """The node's name and its input and output sockets as (port, column) pairs."""
        rel = BundleArchive.join(directory, f"node.{self.ext}")
        where = f"{self.archive.label}: {rel}"
        data = self.archive.read(rel)
        if self.format == "protobuf":
            node = bundle_pb2.Node()
            try:
                node.ParseFromString(data)
            except DecodeError as err:
                raise BundleError(f"{where}: not an ml.bundle.Node message ({err})") from None
            ins = [(s.port, s.name) for s in node.shape.inputs]
            outs = [(s.port, s.name) for s in node.shape.outputs]
            return node.name, ins, outs
        obj = _json(data, where)
        shape = obj.get("shape") if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(shape, dict):
            raise BundleError(f"{where}: must be an object with 'name' and 'shape'")
        return (
            obj["name"],
            _sockets(shape.get("inputs"), where, "inputs"),
            _sockets(shape.get("outputs"), where, "outputs"),
        )

    def load_node(self, directory: str, depth: int = 0) -> Op:
        """The op stored in `directory` (a `*.node` folder, or `root`)."""
        # the registry imports every op module; imported here to keep reader and ops acyclic
        from scorer.bundle.ops import OPS

        if depth > _MAX_DEPTH:
            raise BundleError(f"{self.archive.label}: node {directory}: pipelines nested too deeply")
        op_name, attrs = self.read_model(directory)
        name, inputs, outputs = self.read_shape(directory)
        factory = OPS.get(op_name)
        if factory is None:
            raise BundleError(f"{self.archive.label}: node {directory}: unsupported op {op_name!r}")
        ctx = NodeContext(
            archive=self.archive,
            format=self.format,
            path=directory,
            name=name,
            op=op_name,
            attrs=attrs,
            inputs=inputs,
            outputs=outputs,
            cache=self.cache,
            bundle_sha256=self.archive.sha256,
            load_child=lambda child: self.load_node(
                BundleArchive.join(directory, f"{child}.node"), depth + 1
            ),
            read_model=lambda sub: self.read_model(BundleArchive.join(directory, sub)),
        )
        return factory(ctx)


def _sockets(raw: Any, where: str, key: str) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise BundleError(f"{where}: shape.{key} must be a list")
    out = []
    for i, s in enumerate(raw):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("port"), str)
            or not isinstance(s.get("name"), str)
        ):
            raise BundleError(f"{where}: shape.{key}[{i}] must have string 'port' and 'name'")
        out.append((s["port"], s["name"]))
    return out
