"""A bundle's direct path for dense rows, where its shape allows one.

The commonest scoring bundle is a vector assembler of named double features feeding one classifier
(a forest, a boosted ensemble, a linear model). For such a bundle, a dense block whose columns are the
assembler's inputs in its order already *is* the assembled feature matrix: the bundle's whole output is
that block and the classifier's scores of it. `DensePlan.run` computes exactly that, with the same ops
`Bundle.transform` runs, minus what it costs to build frames around one matrix: per column views, the
assembler's copy, a frame per op. Any other bundle, or any other request, takes the general path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scorer.bundle.op import Op
from scorer.bundle.ops.classify import Classifier
from scorer.bundle.ops.features import VectorAssembler
from scorer.bundle.ops.pipeline import Pipeline
from scorer.frame import Field


class DensePlan:
    """Scores a rows x len(names) float64 block of the assembler's inputs, in its order."""

    __slots__ = ("_classifier", "_features", "_outputs", "names", "output_names")

    def __init__(self, names: list[str], features: Field, classifier: Classifier) -> None:
        self.names = names
        self._features = features
        self._classifier = classifier
        self.output_names = [features.name, *(f.name for f in classifier.output_fields)]
        self._outputs = frozenset(self.output_names)

    def outputs_all(self, names: Sequence[str]) -> bool:
        """Whether every one of `names` is an output column of the bundle."""
        return self._outputs.issuperset(names)

    def run(self, matrix: np.ndarray) -> list[tuple[Field, np.ndarray]]:
        """The bundle's output columns for `matrix` (C-ordered float64), in its output schema's order."""
        return [(self._features, matrix), *self._classifier.scores(matrix)]


def pick(columns: list[tuple[Field, np.ndarray]], names: Sequence[str]) -> list[tuple[Field, np.ndarray]]:
    """The named ones of `columns`, in the order of `names` (every one among them)."""
    by_name = {field.name: (field, array) for field, array in columns}
    return [by_name[name] for name in names]


def dense_plan(root: Op, input_schema: Sequence[Field], output_schema: Sequence[Field]) -> DensePlan | None:
    """The direct path of a bundle (its root op and schemas) that is an assembler of scalar doubles
    feeding one classifier, with the assembled vector and the scores as its whole output; None for any
    other bundle."""
    if not isinstance(root, Pipeline) or len(root.children) != 2:
        return None
    assembler, classifier = root.children
    if not isinstance(assembler, VectorAssembler) or not isinstance(classifier, Classifier):
        return None
    names = assembler.scalar_names
    if names is None or len(set(names)) != len(names) or classifier.n_features != len(names):
        return None
    features = assembler.output_fields[0]
    if classifier.features != features.name:
        return None
    # every input the bundle reads is one of the assembler's columns, declared a plain double
    inputs = {f.name: f.dtype for f in input_schema}
    if inputs.keys() != set(names) or any(d.base != "double" or d.shape != "scalar" for d in inputs.values()):
        return None
    plan = DensePlan(list(names), features, classifier)
    if [f.name for f in output_schema] != plan.output_names:
        return None
    # every output a double or a tensor of doubles, so a reply encodes them as they come
    if any(f.dtype.base != "double" or f.dtype.shape == "list" for f in output_schema):
        return None
    return plan
