"""Bundles written by the `mleap` PyPI package from scikit-learn models score as scikit-learn predicts."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scorer.bundle import load_bundle
from scorer.frame import DataType, Field, LeapFrame
from scorer.trees import ForestCache
from tests.integration.test_bundle_fixtures import assert_frames_match, harness  # noqa: F401  (fixture)

pd = pytest.importorskip("pandas")
pytest.importorskip("mleap.sklearn.pipeline")

N_ROWS = 2000
NAMES = ["a", "b", "c", "d"]
RNG = np.random.default_rng(11)
# float32-representable inputs: scikit-learn's trees compare in float32, MLeap's in float64
X = RNG.normal(scale=2.0, size=(N_ROWS, len(NAMES))).astype(np.float32).astype(np.float64)
Y = X @ np.array([1.5, -2.0, 0.5, 3.0]) + RNG.normal(scale=0.5, size=N_ROWS)
Y_BINARY = (Y > 0.3).astype(int)
Y_CLASSES = np.digitize(Y, [-2.0, 1.0, 4.0])


def _df() -> Any:
    """X as the DataFrame the pipeline fitted on (sklearn warns, and so fails, without its names)."""
    return pd.DataFrame(X, columns=NAMES)


def _frame() -> LeapFrame:
    return LeapFrame(
        [Field(n, DataType.scalar("double")) for n in NAMES], [X[:, i].copy() for i in range(len(NAMES))]
    )


def _export(tmp_path: Path, estimator: Any, target: np.ndarray | None) -> Path:
    """Fit FeatureExtractor -> estimator as an mleap-instrumented sklearn Pipeline and write a bundle."""
    # importing these modules is what instruments sklearn's estimators with mlinit/serialize_to_bundle
    import mleap.sklearn.base
    import mleap.sklearn.ensemble.forest
    import mleap.sklearn.logistic
    import mleap.sklearn.preprocessing.data
    import mleap.sklearn.tree.tree  # noqa: F401
    from mleap.sklearn.preprocessing.data import FeatureExtractor
    from sklearn.pipeline import Pipeline

    features = FeatureExtractor(input_scalars=NAMES, output_vector="features")
    if "Forest" in type(estimator).__name__ or "Tree" in type(estimator).__name__:
        estimator.mlinit(input_features="features", prediction_column="prediction", feature_names=NAMES)
    elif target is None:
        estimator.mlinit(prior_tf=features, output_features="output")
    else:
        estimator.mlinit(input_features="features", prediction_column="prediction")
    pipe = Pipeline([(features.name, features), (estimator.name, estimator)])
    pipe.mlinit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package and sklearn disagree on deprecations, not on numbers
        pipe.fit(_df(), target)
        pipe.serialize_to_bundle(str(tmp_path), "model", init=True)
    return tmp_path / "model.zip"


def _score(bundle: Path, tmp_path: Path) -> LeapFrame:
    return load_bundle(bundle, cache=ForestCache(tmp_path / "cache")).transform(_frame())


def _close(ours: np.ndarray, theirs: np.ndarray) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_linear_regression(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression()
    # the package reads intercept_[0] and coef_[0]: a 2-d target gives sklearn those shapes
    out = _score(_export(tmp_path, model, Y.reshape(-1, 1)), tmp_path)
    _close(out.column("prediction"), model.predict(_df())[:, 0])


def test_binary_logistic_regression(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    out = _score(_export(tmp_path, model, Y_BINARY), tmp_path)
    np.testing.assert_array_equal(out.column("prediction"), model.predict(_df()))


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("random_forest_classifier", Y_CLASSES),
        ("random_forest_regressor", Y),
        ("decision_tree_classifier", Y_BINARY),
        ("decision_tree_regressor", Y),
    ],
)
def test_tree_models(tmp_path: Path, kind: str, target: np.ndarray) -> None:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    make = {
        "random_forest_classifier": lambda: RandomForestClassifier(
            n_estimators=25, max_depth=8, random_state=0
        ),
        "random_forest_regressor": lambda: RandomForestRegressor(
            n_estimators=25, max_depth=8, random_state=0
        ),
        "decision_tree_classifier": lambda: DecisionTreeClassifier(max_depth=10, random_state=0),
        "decision_tree_regressor": lambda: DecisionTreeRegressor(max_depth=10, random_state=0),
    }[kind]
    model = make()
    out = _score(_export(tmp_path, model, target), tmp_path)
    np.testing.assert_array_equal(out.column("prediction"), model.predict(_df()))
    if kind == "random_forest_classifier":
        _close(out.column("probability"), model.predict_proba(_df()))
    if kind.endswith("regressor"):
        _close(out.column("prediction"), model.predict(_df()))


@pytest.mark.parametrize("kind", ["standard_scaler", "min_max_scaler", "binarizer"])
def test_preprocessing(tmp_path: Path, kind: str) -> None:
    from sklearn.preprocessing import Binarizer, MinMaxScaler, StandardScaler

    model = {"standard_scaler": StandardScaler, "min_max_scaler": MinMaxScaler, "binarizer": Binarizer}[
        kind
    ]()
    if kind == "binarizer":
        model.set_params(threshold=0.25)
    out = _score(_export(tmp_path, model, None), tmp_path)
    _close(out.column("output"), model.transform(_df()))


def test_math_unary_and_binary(tmp_path: Path) -> None:
    from mleap.sklearn.preprocessing.data import MathBinary, MathUnary
    from sklearn.pipeline import Pipeline

    unary = MathUnary(input_features="a", output_features="exp_a", transform_type="exp")
    binary = MathBinary(input_features=["b", "c"], output_features="b_times_c", transform_type="mul")
    for step, expected, column in (
        (unary, np.exp(X[:, 0]), "exp_a"),
        (binary, X[:, 1] * X[:, 2], "b_times_c"),
    ):
        pipe = Pipeline([(step.name, step)])
        pipe.mlinit()
        out_dir = tmp_path / step.name
        out_dir.mkdir()
        pipe.serialize_to_bundle(str(out_dir), "model", init=True)
        _close(_score(out_dir / "model.zip", tmp_path).column(column), expected)


# --- the same bundles through MLeap's JVM runtime -------------------------------------------------


@pytest.mark.jvm
@pytest.mark.parametrize(
    "kind", ["multinomial_logistic", "random_forest_classifier", "binarizer", "standard_scaler"]
)
def test_package_bundles_score_as_mleaps_jvm_runtime(harness: Any, tmp_path: Path, kind: str) -> None:  # noqa: F811
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import Binarizer, StandardScaler

    model, target = {
        # the package writes coef_ row-major; MLeap reads the matrix column-major, and so does rtscore
        "multinomial_logistic": (LogisticRegression(max_iter=500), Y_CLASSES),
        "random_forest_classifier": (
            RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0),
            Y_CLASSES,
        ),
        "binarizer": (Binarizer(threshold=1.0), None),
        "standard_scaler": (StandardScaler(), None),
    }[kind]
    bundle = _export(tmp_path, model, target)
    rows = 300
    frame = {"schema": {"fields": [{"name": n, "type": "double"} for n in NAMES]}, "rows": X[:rows].tolist()}
    ours = _score(bundle, tmp_path).to_mleap_json()
    ours["rows"] = ours["rows"][:rows]
    assert_frames_match(ours, harness.score(bundle, frame))


@pytest.mark.jvm
def test_forest_resaved_as_protobuf_by_mleap_scores_the_same(harness: Any, tmp_path: Path) -> None:  # noqa: F811
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0)
    resaved = harness.resave(_export(tmp_path, model, Y_CLASSES), tmp_path / "resaved.zip", "protobuf")
    with zipfile.ZipFile(resaved) as zf:
        # trees written by MLeap 0.20 itself, under the name it used before 0.23
        assert any(n.endswith("/nodes.pb") for n in zf.namelist())
    out = load_bundle(resaved, cache=ForestCache(tmp_path / "pb-cache")).transform(_frame())
    _close(out.column("probability"), model.predict_proba(_df()))
    np.testing.assert_array_equal(out.column("prediction"), model.predict(_df()))
