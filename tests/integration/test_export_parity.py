"""Exported bundles score like the scikit-learn model, in rtscore's runtime and in MLeap's own JVM runtime."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Binarizer, KBinsDiscretizer, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from scorer.bundle import load_bundle
from scorer.export import export_sklearn
from scorer.frame import LeapFrame
from scorer.reference import ReferenceHarness

ROWS = 1_000
N_FEATURES = 5
TOLERANCE = 1e-9


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    # float32-representable inputs: sklearn's trees compare float32(x) with their thresholds.
    x = rng.normal(size=(2 * ROWS, N_FEATURES)).astype(np.float32).astype(np.float64)
    noise = rng.normal(size=2 * ROWS)
    return {
        "x": x,
        "binary": (x[:, 0] + 0.5 * x[:, 1] ** 2 + noise > 0.5).astype(np.int64),
        "three": np.digitize(x[:, 0] + 0.3 * noise, [-0.5, 0.5]),
        "real": x @ np.arange(N_FEATURES) + np.sin(x[:, 2]) + 0.1 * noise,
    }


DATA = _data()
TRAIN, TEST = DATA["x"][:ROWS], DATA["x"][ROWS:]


def _codes_in_last_column() -> np.ndarray:
    return np.floor(np.clip(TRAIN[:, -1] + 2, 0, 3))


CASES: dict[str, tuple[Callable[[], Any], str]] = {
    "random_forest_classifier": (lambda: RandomForestClassifier(n_estimators=10, random_state=0), "binary"),
    "random_forest_classifier_3_classes": (
        lambda: RandomForestClassifier(n_estimators=5, random_state=0),
        "three",
    ),
    "random_forest_regressor": (lambda: RandomForestRegressor(n_estimators=5, random_state=0), "real"),
    "decision_tree_classifier": (lambda: DecisionTreeClassifier(max_depth=8, random_state=0), "three"),
    "decision_tree_regressor_best_first": (
        lambda: DecisionTreeRegressor(max_leaf_nodes=50, random_state=0),
        "real",
    ),
    "gradient_boosting_classifier": (lambda: GradientBoostingClassifier(n_estimators=20), "binary"),
    "gradient_boosting_classifier_exponential": (
        lambda: GradientBoostingClassifier(n_estimators=10, loss="exponential"),
        "binary",
    ),
    "gradient_boosting_regressor": (lambda: GradientBoostingRegressor(n_estimators=20), "real"),
    "logistic_regression_binary_scaled": (
        lambda: make_pipeline(StandardScaler(), LogisticRegression()),
        "binary",
    ),
    "logistic_regression_multinomial": (lambda: LogisticRegression(), "three"),
    "linear_regression_min_max": (lambda: make_pipeline(MinMaxScaler(), LinearRegression()), "real"),
    "ridge_binarized": (lambda: make_pipeline(Binarizer(threshold=0.1), Ridge()), "real"),
    "lasso_imputed_bucketized": (
        lambda: make_pipeline(
            SimpleImputer(),
            KBinsDiscretizer(n_bins=4, encode="ordinal", quantile_method="averaged_inverted_cdf"),
            Lasso(alpha=0.01),
        ),
        "real",
    ),
    "column_transformer_gbt": (
        lambda: make_pipeline(
            ColumnTransformer(
                [("scaled", StandardScaler(), [0, 1]), ("dropped", "drop", [3])], remainder="passthrough"
            ),
            GradientBoostingClassifier(n_estimators=5),
        ),
        "binary",
    ),
}


def _target(kind: str, n: int) -> np.ndarray:
    return DATA[kind][:n]


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    """Every case's estimator, fitted once for the module."""
    models = {}
    for name, (make, kind) in CASES.items():
        target = _target(kind, ROWS)
        # Some regressors see a 2-d (n, 1) target (the ones that accept it silently): exports must not care.
        if name in ("decision_tree_regressor_best_first", "linear_regression_min_max"):
            target = target.reshape(-1, 1)
        models[name] = make().fit(TRAIN, target)
    return models


def _frame(x: np.ndarray) -> dict[str, Any]:
    return {
        "schema": {"fields": [{"name": f"f{i}", "type": "double"} for i in range(x.shape[1])]},
        "rows": x.tolist(),
    }


def _expected(est: Any, x: np.ndarray) -> tuple[str, np.ndarray]:
    if hasattr(est, "predict_proba"):
        return "probability", est.predict_proba(x)
    return "prediction", np.ravel(est.predict(x))


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_rtscore_runtime_scores_export_like_sklearn(
    fitted: dict[str, Any], case: str, fmt: str, tmp_path: Path
) -> None:
    est = fitted[case]
    bundle = load_bundle(export_sklearn(est, tmp_path / "model.zip", format=fmt), cache=None)
    out = bundle.transform(LeapFrame.from_mleap_json(_frame(TEST)))
    column, expected = _expected(est, TEST)
    np.testing.assert_allclose(
        np.asarray(out.column(column), dtype=np.float64), expected, rtol=0, atol=TOLERANCE
    )
    if column == "probability":
        labels = np.asarray(out.column("prediction"), dtype=np.float64)
        assert np.mean(est.classes_[labels.astype(np.int64)] == est.predict(TEST)) > 0.999


def test_one_hot_encoded_codes_score_like_sklearn(tmp_path: Path) -> None:
    codes = np.column_stack([TRAIN[:, :2], _codes_in_last_column()])
    pipe = make_pipeline(
        ColumnTransformer([("onehot", OneHotEncoder(), [2])], remainder="passthrough"),
        LogisticRegression(),
    ).fit(codes, DATA["binary"][:ROWS])
    bundle = load_bundle(export_sklearn(pipe, tmp_path / "onehot.zip"), cache=None)
    out = bundle.transform(LeapFrame.from_mleap_json(_frame(codes)))
    np.testing.assert_allclose(
        np.asarray(out.column("probability")), pipe.predict_proba(codes), atol=TOLERANCE
    )


@pytest.fixture(scope="module")
def harness() -> Iterator[ReferenceHarness]:
    """MLeap's JVM runtime, one serving JVM for the module."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed")
    with ReferenceHarness() as started:
        if shutil.which("mvn") is not None:
            started.build()
        elif not started.layout.is_built():
            pytest.skip("Maven is not installed and the MLeap reference harness is not built")
        yield started


def _dense(cell: Any) -> list[float]:
    """A result cell as floats; MLeap writes tensors as {values, dimensions[, indices]}."""
    if not isinstance(cell, dict):
        return [float(cell)]
    size = math.prod(cell["dimensions"])
    if "indices" not in cell:
        return [float(v) for v in cell["values"]]
    dense = [0.0] * size
    for (index,), value in zip(cell["indices"], cell["values"], strict=True):
        dense[index] = float(value)
    return dense


@pytest.mark.jvm
@pytest.mark.parametrize("fmt", ["protobuf", "json"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_mleap_jvm_runtime_loads_export_and_agrees_with_sklearn(
    fitted: dict[str, Any], harness: ReferenceHarness, case: str, fmt: str, tmp_path: Path
) -> None:
    est = fitted[case]
    bundle = export_sklearn(est, tmp_path / "model.zip", format=fmt)
    result = harness.score(bundle, _frame(TEST))
    names = [field["name"] for field in result["schema"]["fields"]]
    column, expected = _expected(est, TEST)
    got = np.array([_dense(row[names.index(column)]) for row in result["rows"]])
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=0, atol=TOLERANCE)
