"""MLeap's probabilistic classifier outputs: `raw_prediction`, `probability`, `prediction`, thresholds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scorer.bundle.errors import BundleError
from scorer.bundle.op import DOUBLE, NodeContext, Op, double_vector
from scorer.frame import Field, LeapFrame

Matrix = Callable[[np.ndarray], np.ndarray]  # a new array: never changes its argument


def normalize_rows(raw: np.ndarray) -> np.ndarray:
    """Each row divided by its sum, rows summing to 0 left alone (MLeap's normalizeToProbabilities).

    Sums add a row's values left to right, as MLeap does (numpy's own sum pairs them differently)."""
    if raw.shape[0] == 1:
        # one row in Python floats: right after the forest kernel has flushed the caches, each numpy
        # call costs several µs, more than the arithmetic
        row = raw[0].tolist()
        total = 0.0
        for value in row:
            total += value
        return np.array([[value / total for value in row]]) if total != 0.0 else raw.copy()
    totals = raw[:, :1].copy()
    for c in range(1, raw.shape[1]):
        totals += raw[:, c : c + 1]
    if np.count_nonzero(totals) != totals.shape[0]:
        totals[totals == 0.0] = 1.0  # x / 1 is x exactly: those rows are left as they are
    with np.errstate(invalid="ignore"):  # inf / inf is NaN, as in MLeap
        return raw / totals


def argmax_with_thresholds(prob: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Index of the largest probability, each scaled by 1/threshold when thresholds are set.

    As numpy's argmax: the first of equal values, and a NaN counts as the largest."""
    if thresholds is None:
        if prob.shape[0] == 1:  # one row in Python floats, as in normalize_rows
            return np.array([float(_first_max(prob[0].tolist()))])
        return prob.argmax(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(thresholds == 0.0, np.inf, prob / np.where(thresholds == 0.0, 1.0, thresholds))
    return scaled.argmax(axis=1).astype(np.float64)


def _first_max(row: list[float]) -> int:
    best = 0
    for i, value in enumerate(row):
        if value != value:  # NaN
            return i
        if value > row[best]:
            best = i
    return best


class Classifier(Op):
    """A classifier computing raw scores, then probabilities, then a class index."""

    features: str
    n_features: int
    raw: Matrix
    to_probability: Matrix
    thresholds: np.ndarray | None
    raw_column: str | None
    probability_column: str | None
    prediction_column: str
    predict_from_raw: Callable[[np.ndarray], np.ndarray] | None = None
    predict_from_probability: Callable[[np.ndarray], np.ndarray] | None = None

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append the raw scores, probabilities and prediction this node names."""
        return frame.with_columns(self.scores(self.vectors(frame, self.features, self.n_features)))

    def scores(self, x: np.ndarray) -> list[tuple[Field, np.ndarray]]:
        """The output columns of feature rows `x` (float64 [n, n_features]), in `output_fields` order."""
        raw = self.raw(x)
        out: list[tuple[Field, np.ndarray]] = []
        if self.raw_column is not None:
            out.append((self.output_fields[0], raw))
        if self.probability_column is not None or self.raw_column is None:
            prob = self.to_probability(raw)
            if self.probability_column is not None:
                out.append((self.output_fields[len(out)], prob))
            if self.predict_from_probability is not None and self.thresholds is None:
                pred = self.predict_from_probability(prob)
            else:
                pred = argmax_with_thresholds(prob, self.thresholds)
        elif self.thresholds is not None:
            pred = argmax_with_thresholds(self.to_probability(raw), self.thresholds)
        elif self.predict_from_raw is not None:
            pred = self.predict_from_raw(raw)
        else:
            pred = argmax_with_thresholds(raw, None)
        out.append((self.output_fields[-1], pred))
        return out


def build_classifier(
    ctx: NodeContext,
    n_features: int,
    n_classes: int,
    raw: Matrix,
    to_probability: Matrix,
    thresholds: np.ndarray | None,
) -> Classifier:
    """A Classifier bound to this node's `features` input and its optional outputs."""
    if thresholds is not None and thresholds.shape != (n_classes,):
        raise BundleError(
            f"{ctx.where}: attribute 'thresholds' has {thresholds.size} values, expected {n_classes}"
        )
    features = ctx.input("features")
    raw_col = ctx.optional_output("raw_prediction")
    prob_col = ctx.optional_output("probability")
    pred_col = ctx.output("prediction")
    outputs = []
    if raw_col is not None:
        outputs.append(Field(raw_col, double_vector(n_classes)))
    if prob_col is not None:
        outputs.append(Field(prob_col, double_vector(n_classes)))
    outputs.append(Field(pred_col, DOUBLE))
    op = Classifier(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.input_fields = [Field(features, double_vector(n_features))]
    op.output_fields = outputs
    op.features, op.n_features = features, n_features
    op.raw, op.to_probability, op.thresholds = raw, to_probability, thresholds
    op.raw_column, op.probability_column, op.prediction_column = raw_col, prob_col, pred_col
    return op


def optional_thresholds(ctx: NodeContext) -> np.ndarray | None:
    """The `thresholds` double list when present."""
    if not ctx.attrs.has("thresholds"):
        return None
    return ctx.attrs.finite("thresholds", ctx.attrs.double_list("thresholds"))
