"""The op registry: MLeap op name -> factory building the op from its node."""

from __future__ import annotations

from scorer.bundle.op import Factory
from scorer.bundle.ops import features, linear, numeric, pipeline, trees

OPS: dict[str, Factory] = {
    **pipeline.FACTORIES,
    **linear.FACTORIES,
    **trees.FACTORIES,
    **features.FACTORIES,
    **numeric.FACTORIES,
}
