"""`linear_regression` and `logistic_regression` (binary and multinomial), as MLeap computes them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scorer.bundle.errors import BundleError
from scorer.bundle.op import DOUBLE, NodeContext, Op, double_vector
from scorer.bundle.ops.classify import build_classifier, optional_thresholds
from scorer.frame import Field, LeapFrame


class Regressor(Op):
    """One double prediction per row from a `features` tensor."""

    features: str
    n_features: int
    predict: Callable[[np.ndarray], np.ndarray]

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append the prediction column."""
        x = self.vectors(frame, self.features, self.n_features)
        return frame.with_column(self.output_fields[0], self.predict(x))


def build_regressor(
    ctx: NodeContext, n_features: int, predict: Callable[[np.ndarray], np.ndarray]
) -> Regressor:
    """A Regressor bound to this node's `features` input and `prediction` output."""
    op = Regressor(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.features = ctx.input("features")
    op.n_features = n_features
    op.predict = predict
    op.input_fields = [Field(op.features, double_vector(n_features))]
    op.output_fields = [Field(ctx.output("prediction"), DOUBLE)]
    return op


def load_linear_regression(ctx: NodeContext) -> Op:
    """prediction = features . coefficients + intercept."""
    coef = ctx.attrs.finite("coefficients", ctx.attrs.vector("coefficients"))
    intercept = ctx.attrs.double("intercept")
    return build_regressor(ctx, coef.shape[0], lambda x: x @ coef + intercept)


def _sigmoid(raw: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-raw) = inf past raw = -709: the probability is then 0
        return 1.0 / (1.0 + np.exp(-raw))


def load_logistic_regression(ctx: NodeContext) -> Op:
    """Binary (coefficients, intercept, threshold) or multinomial (coefficient_matrix, ...) logistic."""
    n_classes = ctx.attrs.long("num_classes") if ctx.attrs.has("num_classes") else 2
    if n_classes > 2:
        return _multinomial(ctx, n_classes)
    if n_classes < 2:
        raise BundleError(f"{ctx.where}: attribute 'num_classes' is {n_classes}, expected at least 2")
    coef = ctx.attrs.finite("coefficients", ctx.attrs.vector("coefficients"))
    intercept = ctx.attrs.double("intercept")
    threshold = ctx.attrs.double("threshold") if ctx.attrs.has("threshold") else 0.5
    if not 0.0 <= threshold <= 1.0:
        raise BundleError(f"{ctx.where}: attribute 'threshold' is {threshold}, expected a value in [0, 1]")
    if threshold == 0.0:
        raw_threshold = -np.inf
    elif threshold == 1.0:
        raw_threshold = np.inf
    else:
        raw_threshold = float(np.log(threshold / (1.0 - threshold)))

    def raw(x: np.ndarray) -> np.ndarray:
        m = x @ coef + intercept
        return np.stack([-m, m], axis=1)

    op = build_classifier(ctx, coef.shape[0], 2, raw, _sigmoid, None)
    op.predict_from_probability = lambda p: (p[:, 1] > threshold).astype(np.float64)
    op.predict_from_raw = lambda r: (r[:, 1] > raw_threshold).astype(np.float64)
    return op


def _multinomial(ctx: NodeContext, n_classes: int) -> Op:
    matrix = ctx.attrs.finite("coefficient_matrix", ctx.attrs.tensor("coefficient_matrix"))
    if matrix.ndim != 2 or matrix.shape[0] != n_classes:
        raise BundleError(
            f"{ctx.where}: attribute 'coefficient_matrix' has shape {list(matrix.shape)}, "
            f"expected [{n_classes}, n_features]"
        )
    # Spark's DenseMatrix is column-major: MLeap stores and reads the values in that order
    rows, cols = int(matrix.shape[0]), int(matrix.shape[1])
    coef = matrix.reshape(-1).reshape((rows, cols), order="F")
    intercept = ctx.attrs.finite("intercept_vector", ctx.attrs.vector("intercept_vector", n_classes))

    def raw(x: np.ndarray) -> np.ndarray:
        return x @ coef.T + intercept

    def softmax(margins: np.ndarray) -> np.ndarray:
        top = margins.max(axis=1, keepdims=True)
        shifted = np.where(top > 0, margins - top, margins)
        e = np.exp(shifted)
        prob = e * (1.0 / e.sum(axis=1, keepdims=True))
        inf_rows = np.isposinf(top[:, 0])
        if inf_rows.any():
            prob[inf_rows] = np.eye(n_classes)[np.argmax(margins[inf_rows], axis=1)]
        return prob

    n_features = cols
    return build_classifier(ctx, n_features, n_classes, raw, softmax, optional_thresholds(ctx))


FACTORIES = {
    "linear_regression": load_linear_regression,
    "logistic_regression": load_logistic_regression,
}
