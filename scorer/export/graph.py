"""The in-memory shape of a bundle before it is written: op models, their files, and pipeline nodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protos.ml.bundle import bundle_pb2 as pb

# A file's bytes, produced only when the writer reaches it, so a large forest is never all in memory.
FileBytes = Callable[[str], bytes]


@dataclass
class OpModel:
    """An op's `model.json|pb`, extra files beside it (keyed by stem, e.g. `tree`), and nested sub-models."""

    op: str
    attributes: dict[str, pb.Value] = field(default_factory=dict)
    files: dict[str, FileBytes] = field(default_factory=dict)
    submodels: dict[str, OpModel] = field(default_factory=dict)
    tree_nodes: int = 0  # decision-tree nodes this model writes itself (for the export summary)

    def to_pb(self) -> pb.Model:
        """The model as a `ml.bundle.Model` message."""
        model = pb.Model(op=self.op)
        for name, value in self.attributes.items():
            model.attributes.list[name].CopyFrom(value)
        return model


@dataclass
class OpNode:
    """A graph node: a named op with its port → column bindings; pipelines hold their stages as children."""

    name: str
    model: OpModel
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    children: list[OpNode] = field(default_factory=list)

    def to_pb(self) -> pb.Node:
        """The node as a `ml.bundle.Node` message."""
        node = pb.Node(name=self.name)
        node.shape.inputs.extend(pb.Socket(port=p, name=n) for p, n in self.inputs)
        node.shape.outputs.extend(pb.Socket(port=p, name=n) for p, n in self.outputs)
        return node

    def count_tree_nodes(self) -> int:
        """Decision-tree nodes written under this node and its children."""
        return _model_tree_nodes(self.model) + sum(c.count_tree_nodes() for c in self.children)


def _model_tree_nodes(model: OpModel) -> int:
    return model.tree_nodes + sum(_model_tree_nodes(m) for m in model.submodels.values())
