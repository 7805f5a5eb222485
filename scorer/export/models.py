"""Op models for scikit-learn predictors: tree ensembles, single trees, logistic and linear regression."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtscore.errors import InvalidArgument
from scorer.export import values as v
from scorer.export.graph import OpModel
from scorer.export.treewire import encode_tree_json, encode_tree_pb, tree_from_sklearn
from scorer.trees.tree import Tree

CLASSIFIER_OUTPUTS = ("raw_prediction", "probability", "prediction")
REGRESSOR_OUTPUTS = ("prediction",)


@dataclass(frozen=True)
class Predictor:
    """A predictor's op model and the output ports it binds (named as MLeap names them)."""

    model: OpModel
    outputs: tuple[str, ...]


def _tree_file(make_tree: Callable[[], Tree]) -> Callable[[str], bytes]:
    # The tree is re-indexed and encoded only when the writer asks for the file.
    def produce(fmt: str) -> bytes:
        tree = make_tree()
        return encode_tree_pb(tree) if fmt == "protobuf" else encode_tree_json(tree)

    return produce


def _classifier_tree(sk_tree: Any, n_features: int, n_classes: int) -> OpModel:
    # sklearn stores per-node class fractions; MLeap normalises a classifier tree's leaf values per
    # tree, so fractions give the same probabilities as Spark's raw class counts.
    model = OpModel(
        "decision_tree_classifier",
        {"num_features": v.long(n_features), "num_classes": v.long(n_classes)},
        files={"tree": _tree_file(lambda: tree_from_sklearn(sk_tree, sk_tree.value[:, 0, :]))},
    )
    model.tree_nodes = int(sk_tree.node_count)
    return model


def _regression_tree(sk_tree: Any, n_features: int) -> OpModel:
    model = OpModel(
        "decision_tree_regression",
        {"num_features": v.long(n_features)},
        files={"tree": _tree_file(lambda: tree_from_sklearn(sk_tree, sk_tree.value[:, 0, :1]))},
    )
    model.tree_nodes = int(sk_tree.node_count)
    return model


def _constant_tree(value: float, n_features: int) -> OpModel:
    """A one-leaf regression tree: how a GBT's starting score rides along MLeap's weighted tree sum."""
    leaf = Tree(
        feature=np.array([-1], dtype=np.int32),
        threshold=np.zeros(1),
        left=np.array([-1], dtype=np.int32),
        right=np.array([-1], dtype=np.int32),
        values=np.array([[value]], dtype=np.float64),
    )
    model = OpModel(
        "decision_tree_regression",
        {"num_features": v.long(n_features)},
        files={"tree": _tree_file(lambda: leaf)},
    )
    model.tree_nodes = 1
    return model


def _ensemble(op: str, trees: list[OpModel], weights: list[float], attrs: dict[str, Any]) -> OpModel:
    names = [f"tree{i}" for i in range(len(trees))]
    attributes = {**attrs, "tree_weights": v.double_list(weights), "trees": v.string_list(names)}
    return OpModel(op, attributes, submodels=dict(zip(names, trees, strict=True)))


def _n_classes(est: Any) -> int:
    if getattr(est, "n_outputs_", 1) != 1:
        raise InvalidArgument(f"{type(est).__name__} with several outputs has no MLeap op")
    return len(est.classes_)


def random_forest(est: Any, n_features: int, classifier: bool) -> Predictor:
    """RandomForestClassifier/Regressor (and ExtraTrees) as MLeap's random forest ops."""
    trees_in = est.estimators_
    if classifier:
        k = _n_classes(est)
        trees = [_classifier_tree(t.tree_, n_features, k) for t in trees_in]
        attrs = {"num_features": v.long(n_features), "num_classes": v.long(k)}
        model = _ensemble("random_forest_classifier", trees, [1.0] * len(trees), attrs)
        return Predictor(model, CLASSIFIER_OUTPUTS)
    trees = [_regression_tree(t.tree_, n_features) for t in trees_in]
    # MLeap's forest regression averages the trees and ignores the weights; write them as 1.
    model = _ensemble(
        "random_forest_regression", trees, [1.0] * len(trees), {"num_features": v.long(n_features)}
    )
    return Predictor(model, REGRESSOR_OUTPUTS)


def decision_tree(est: Any, n_features: int, classifier: bool) -> Predictor:
    """DecisionTreeClassifier/Regressor as MLeap's decision tree ops."""
    if classifier:
        model = _classifier_tree(est.tree_, n_features, _n_classes(est))
        return Predictor(model, CLASSIFIER_OUTPUTS)
    return Predictor(_regression_tree(est.tree_, n_features), REGRESSOR_OUTPUTS)


def _gbt_start(est: Any, n_features: int) -> float:
    init = est.init_
    if isinstance(init, str) and init == "zero":
        return 0.0
    if type(init).__name__ not in ("DummyClassifier", "DummyRegressor"):
        raise InvalidArgument(
            f"{type(est).__name__} with init={type(init).__name__}: only the default init maps"
        )
    return float(np.ravel(est._raw_predict_init(np.zeros((1, n_features))))[0])


def gradient_boosting(est: Any, n_features: int, classifier: bool) -> Predictor:
    """GradientBoostingClassifier (binary) / Regressor as MLeap's GBT ops.

    sklearn scores raw = init + learning_rate * Σ tree; MLeap sums weighted trees with no intercept, so
    the start value becomes a one-leaf tree of weight 1. MLeap's classifier turns its margin m into
    1 / (1 + exp(-2m)); sklearn's log-loss takes expit(raw), so the margin is raw / 2 (exact: a power of
    two), while the exponential loss already uses expit(2 * raw).
    """
    start = _gbt_start(est, n_features)
    lr = float(est.learning_rate)
    stages = est.estimators_
    scale = 1.0
    if classifier:
        if _n_classes(est) != 2:
            raise InvalidArgument("GradientBoostingClassifier with more than two classes has no MLeap op")
        if est.loss == "log_loss":
            scale = 0.5
        elif est.loss != "exponential":
            raise InvalidArgument(f"GradientBoostingClassifier loss {est.loss!r} has no MLeap op")
    trees = [_constant_tree(start * scale, n_features)]
    trees += [_regression_tree(stage[0].tree_, n_features) for stage in stages]
    weights = [1.0] + [lr * scale] * len(stages)
    if classifier:
        attrs = {"num_features": v.long(n_features), "num_classes": v.long(2)}
        return Predictor(_ensemble("gbt_classifier", trees, weights, attrs), CLASSIFIER_OUTPUTS)
    attrs = {"num_features": v.long(n_features)}
    return Predictor(_ensemble("gbt_regression", trees, weights, attrs), REGRESSOR_OUTPUTS)


def logistic_regression(est: Any, n_features: int) -> Predictor:
    """LogisticRegression: binary as coefficients + intercept, multinomial as a coefficient matrix."""
    k = _n_classes(est)
    coef = np.asarray(est.coef_, dtype=np.float64)
    intercept = np.ravel(np.asarray(est.intercept_, dtype=np.float64))
    if k == 2:
        attrs = {
            "num_classes": v.long(2),
            "coefficients": v.vector(coef[0]),
            "intercept": v.double(float(intercept[0])),
            "threshold": v.double(0.5),
        }
        return Predictor(OpModel("logistic_regression", attrs), CLASSIFIER_OUTPUTS)
    if getattr(est, "multi_class", "auto") == "ovr":
        raise InvalidArgument(
            "LogisticRegression with multi_class='ovr' has no MLeap op (MLeap uses softmax)"
        )
    attrs = {
        "num_classes": v.long(k),
        # MLeap rebuilds a column-major matrix (Spark's layout) from the tensor's values.
        "coefficient_matrix": v.tensor(coef.ravel(order="F"), [k, coef.shape[1]]),
        "intercept_vector": v.vector(intercept),
    }
    return Predictor(OpModel("logistic_regression", attrs), CLASSIFIER_OUTPUTS)


def linear_regression(est: Any, n_features: int) -> Predictor:
    """LinearRegression, Ridge, Lasso, ElasticNet: coefficients and intercept."""
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise InvalidArgument(f"{type(est).__name__} with {coef.shape[0]} targets has no MLeap op")
    intercept = np.ravel(np.asarray(est.intercept_, dtype=np.float64))
    attrs = {"coefficients": v.vector(coef.ravel()), "intercept": v.double(float(intercept[0]))}
    return Predictor(OpModel("linear_regression", attrs), REGRESSOR_OUTPUTS)
