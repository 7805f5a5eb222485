"""`pipeline`: child nodes run in order, each seeing the columns the previous ones appended."""

from __future__ import annotations

from scorer.bundle.errors import BundleError
from scorer.bundle.op import NodeContext, Op
from scorer.frame import Field, LeapFrame


class Pipeline(Op):
    """A sequence of ops."""

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Run each child in order."""
        for child in self.children:
            frame = child.transform(frame)
        return frame


def load_pipeline(ctx: NodeContext) -> Op:
    """Build a pipeline from its `nodes` attribute (names of `*.node` sub-folders)."""
    names = ctx.attrs.string_list("nodes")
    if not names:
        raise BundleError(f"{ctx.where}: attribute 'nodes' is empty")
    children = [ctx.load_child(n) for n in names]
    produced: set[str] = set()
    inputs: list[Field] = []
    outputs: list[Field] = []
    for child in children:
        for f in child.input_fields:
            if f.name not in produced and all(f.name != g.name for g in inputs):
                inputs.append(f)
        for f in child.output_fields:
            produced.add(f.name)
            outputs.append(f)
    return Pipeline(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs, inputs, outputs, children)


FACTORIES = {"pipeline": load_pipeline}
