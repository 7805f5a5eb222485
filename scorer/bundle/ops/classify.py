"""MLeap's probabilistic classifier outputs: `raw_prediction`, `probability`, `prediction`, thresholds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scorer.bundle.errors import BundleError
from scorer.bundle.op import DOUBLE, NodeContext, Op, double_vector
from scorer.frame import Field, LeapFrame

Matrix = Callable[[np.ndarray], np.ndarray]  # a new array: never changes its argument


def normalize_rows(raw: np.ndarray) -> np.ndarray:
    """Each row divided by its sum, rows summing to 0 left alone (MLeap's normalizeToProbabilities)."""
    # ufuncs called directly: ndarray.sum and .all go through Python wrappers, a few µs on one row
    total = np.add.reduce(raw, axis=1, keepdims=True)
    if np.count_nonzero(total) != total.shape[0]:
        total[total == 0.0] = 1.0  # x / 1 is x exactly: those rows are left as they are
    return raw / total


def argmax_with_thresholds(prob: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Index of the largest probability, each scaled by 1/threshold when thresholds are set."""
    if thresholds is None:
        return prob.argmax(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(thresholds == 0.0, np.inf, prob / np.where(thresholds == 0.0, 1.0, thresholds))
    return scaled.argmax(axis=1).astype(np.float64)


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
        x = self.vectors(frame, self.features, self.n_features)
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
            pred = raw.argmax(axis=1).astype(np.float64)
        out.append((self.output_fields[-1], pred))
        return frame.with_columns(out)


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
