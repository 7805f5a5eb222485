"""What every op is: named input and output columns, a vectorised transform, a place in the op tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scorer.bundle.archive import BundleArchive
from scorer.bundle.attributes import Attributes
from scorer.bundle.errors import BundleError, FrameError
from scorer.frame import DataType, Field, LeapFrame

if TYPE_CHECKING:
    from scorer.trees import ForestCache

DOUBLE = DataType.scalar("double", nullable=False)


def double_vector(size: int | None, nullable: bool = True) -> DataType:
    """MLeap's `TensorType.Double(size)`."""
    return DataType.tensor("double", (size,) if size is not None else None, nullable)


@dataclass
class NodeContext:
    """Everything an op factory may read: its attributes, sockets, files and the bundle around it."""

    archive: BundleArchive
    format: str
    path: str
    name: str
    op: str
    attrs: Attributes
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    cache: ForestCache | None
    bundle_sha256: str
    load_child: Callable[[str], Op]
    read_model: Callable[[str], tuple[str, Attributes]]

    @property
    def where(self) -> str:
        """Prefix for errors: the bundle file and this node."""
        return f"{self.archive.label}: node {self.path}"

    def input(self, port: str) -> str:
        """The column bound to input `port`; a BundleError when absent."""
        for p, n in self.inputs:
            if p == port:
                return n
        raise BundleError(f"{self.where} ({self.op}): missing input port {port!r}")

    def output(self, port: str) -> str:
        """The column bound to output `port`; a BundleError when absent."""
        name = self.optional_output(port)
        if name is None:
            raise BundleError(f"{self.where} ({self.op}): missing output port {port!r}")
        return name

    def optional_output(self, port: str) -> str | None:
        """The column bound to output `port`, or None."""
        return next((n for p, n in self.outputs if p == port), None)

    def numbered_inputs(self) -> list[str]:
        """Columns of ports input0, input1, ... in port order."""
        ports = {p: n for p, n in self.inputs}
        names: list[str] = []
        while f"input{len(names)}" in ports:
            names.append(ports[f"input{len(names)}"])
        if len(names) != len(ports):
            raise BundleError(f"{self.where} ({self.op}): inputs must be ports input0..input{len(ports) - 1}")
        return names


@dataclass
class Op:
    """One node of a bundle: reads its input columns, appends its outputs."""

    op: str
    name: str
    path: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    input_fields: list[Field] = field(default_factory=list)
    output_fields: list[Field] = field(default_factory=list)
    children: list[Op] = field(default_factory=list)

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """The frame with this op's outputs appended."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """This op and its children as the `root` of `rtscore bundle inspect`."""
        return {
            "name": self.name,
            "op": self.op,
            "inputs": [{"port": p, "name": n} for p, n in self.inputs],
            "outputs": [{"port": p, "name": n} for p, n in self.outputs],
            "children": [c.describe() for c in self.children],
        }

    def where(self, column: str) -> str:
        """Prefix for frame errors naming this node and a column."""
        return f"node {self.name} ({self.op}): column {column!r}"

    def doubles(self, frame: LeapFrame, name: str) -> np.ndarray:
        """Column `name` as float64 [n]; it must be a numeric scalar."""
        col = frame.column(name)
        if col.ndim != 1 or col.dtype.kind not in _NUMERIC:
            raise FrameError(f"{self.where(name)} must be a numeric scalar, got {_kind(frame, name)}")
        return col if col.dtype == np.float64 else col.astype(np.float64)

    def vectors(self, frame: LeapFrame, name: str, size: int | None) -> np.ndarray:
        """Column `name` as float64 [n, size]; it must be a numeric tensor of that size."""
        col = frame.column(name)
        if col.ndim != 2 or col.dtype.kind not in _NUMERIC:
            raise FrameError(f"{self.where(name)} must be a tensor of doubles, got {_kind(frame, name)}")
        if size is not None and col.shape[1] != size:
            raise FrameError(f"{self.where(name)} has {col.shape[1]} values per row, expected {size}")
        return col if col.dtype == np.float64 else col.astype(np.float64)

    def strings(self, frame: LeapFrame, name: str) -> np.ndarray:
        """Column `name` as an object array of strings (numbers are turned into MLeap's strings)."""
        col = frame.column(name)
        if col.ndim != 1:
            raise FrameError(f"{self.where(name)} must be a scalar column, got a tensor")
        return col


# numpy kinds that convert to float64 as numbers: booleans, signed and unsigned integers, floats
_NUMERIC = frozenset("biuf")


def _kind(frame: LeapFrame, name: str) -> str:
    dt = frame.field(name).dtype
    dims = f" {list(dt.dimensions)}" if dt.dimensions else ""
    return f"a {dt.shape} of {dt.base}{dims}"


Factory = Callable[[NodeContext], Op]
