"""Compiled forests built from scikit-learn trees score exactly as scikit-learn does."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from scorer.trees import Tree, compile_forest


def tree_from_sklearn(estimator: DecisionTreeClassifier | DecisionTreeRegressor, normalise: bool) -> Tree:
    """A `Tree` from a fitted scikit-learn tree; classifier leaves normalised to sum 1 as MLeap does."""
    raw = estimator.tree_
    is_leaf = raw.children_left < 0
    values = raw.value[:, 0, :].astype(np.float64)
    if normalise:
        values = values / values.sum(axis=1, keepdims=True)
    return Tree(
        feature=np.where(is_leaf, -1, raw.feature).astype(np.int32),
        threshold=np.where(is_leaf, 0.0, raw.threshold).astype(np.float64),
        left=raw.children_left.astype(np.int32),
        right=raw.children_right.astype(np.int32),
        values=np.where(is_leaf[:, None], values, 0.0),
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float32-representable features (scikit-learn compares in float32), noisy labels and targets."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 7)).astype(np.float32).astype(np.float64)
    labels = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.7, size=len(x)) > 0).astype(int)
    labels += (x[:, 3] > 1.0).astype(int)
    target = np.sin(x[:, 0]) + x[:, 4] ** 2 + rng.normal(scale=0.1, size=len(x))
    return x, labels, target


def test_random_forest_classifier_probabilities_match(data: tuple[np.ndarray, ...]) -> None:
    x, labels, _ = data
    model = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1).fit(x, labels)
    forest = compile_forest([tree_from_sklearn(t, normalise=True) for t in model.estimators_], None)
    summed = forest.sum_leaves(x)
    probabilities = summed / summed.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, model.predict_proba(x), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(model.classes_[probabilities.argmax(axis=1)], model.predict(x))


def test_random_forest_regressor_predictions_match(data: tuple[np.ndarray, ...]) -> None:
    x, _, target = data
    model = RandomForestRegressor(n_estimators=20, random_state=0, n_jobs=1).fit(x, target)
    trees = [tree_from_sklearn(t, normalise=False) for t in model.estimators_]
    forest = compile_forest(trees, np.full(len(trees), 1.0 / len(trees)))
    np.testing.assert_allclose(forest.sum_leaves(x)[:, 0], model.predict(x), rtol=1e-12, atol=1e-12)


def test_decision_tree_classifier_matches(data: tuple[np.ndarray, ...]) -> None:
    x, labels, _ = data
    model = DecisionTreeClassifier(random_state=0).fit(x, labels)
    forest = compile_forest([tree_from_sklearn(model, normalise=True)], None)
    np.testing.assert_array_equal(forest.sum_leaves(x), model.predict_proba(x))
    np.testing.assert_array_equal(forest.sum_leaves(x).argmax(axis=1), model.predict(x))


def test_decision_tree_regressor_matches(data: tuple[np.ndarray, ...]) -> None:
    x, _, target = data
    model = DecisionTreeRegressor(max_depth=12, random_state=0).fit(x, target)
    forest = compile_forest([tree_from_sklearn(model, normalise=False)], None)
    np.testing.assert_array_equal(forest.sum_leaves(x)[:, 0], model.predict(x))
