"""Bundle layout and attributes as MLeap's op serializers write them, and refusals of what does not map."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from protos.ml.bundle import bundle_pb2, dtree_pb2
from rtscore.cli import main
from rtscore.errors import InvalidArgument
from scorer.export import export_sklearn

RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 4))
Y = (X[:, 0] + RNG.normal(size=300) > 0).astype(np.int64)
Y3 = np.digitize(X[:, 1], [-0.5, 0.5])


def _model_pb(zf: zipfile.ZipFile, folder: str) -> bundle_pb2.Model:
    return bundle_pb2.Model.FromString(zf.read(f"{folder}/model.pb"))


def test_forest_bundle_has_mleap_layout_and_attributes(tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(X, Y)
    with zipfile.ZipFile(export_sklearn(forest, tmp_path / "rf.zip", name="fraud")) as zf:
        info = json.loads(zf.read("bundle.json"))
        assert info["format"] == "protobuf"
        assert info["name"] == "fraud"
        assert {"uid", "version", "timestamp"} <= set(info)
        root = _model_pb(zf, "root")
        assert root.op == "pipeline"
        assert list(root.attributes.list["nodes"].l.s) == ["vector_assembler", "random_forest_classifier"]
        node = bundle_pb2.Node.FromString(zf.read("root/random_forest_classifier.node/node.pb"))
        assert [(s.port, s.name) for s in node.shape.inputs] == [("features", "features")]
        assert [s.port for s in node.shape.outputs] == ["raw_prediction", "probability", "prediction"]
        rf = _model_pb(zf, "root/random_forest_classifier.node").attributes.list
        assert rf["num_features"].s.l == 4
        assert rf["num_classes"].s.l == 2
        assert list(rf["tree_weights"].l.d) == [1.0, 1.0, 1.0]
        assert list(rf["trees"].l.s) == ["tree0", "tree1", "tree2"]
        tree_model = _model_pb(zf, "root/random_forest_classifier.node/tree1")
        assert tree_model.op == "decision_tree_classifier"
        raw = zf.read("root/random_forest_classifier.node/tree1/tree.pb")
    (size,) = struct.unpack(">i", raw[:4])
    first = dtree_pb2.Node.FromString(raw[4 : 4 + size])
    sk = forest.estimators_[1].tree_
    assert first.internal.split.continuous.feature_index == sk.feature[0]
    assert first.internal.split.continuous.threshold == sk.threshold[0]


def test_assembler_takes_named_scalar_inputs(tmp_path: Path) -> None:
    model = LogisticRegression().fit(X, Y)
    out = export_sklearn(model, tmp_path / "lr", format="json", features=["amount", "age", "hour", "score"])
    node = json.loads((out / "root" / "vector_assembler.node" / "node.json").read_text())
    assert [(s["port"], s["name"]) for s in node["shape"]["inputs"]] == [
        ("input0", "amount"),
        ("input1", "age"),
        ("input2", "hour"),
        ("input3", "score"),
    ]
    shapes = json.loads((out / "root" / "vector_assembler.node" / "model.json").read_text())
    assert shapes["attributes"]["input_shapes"]["data_shape"][0] == {"base": "scalar", "isNullable": False}


def test_tensors_are_big_endian_doubles_and_json_lists_them(tmp_path: Path) -> None:
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y3)
    pb_out = export_sklearn(pipe, tmp_path / "pb")
    scaler = bundle_pb2.Model.FromString((pb_out / "root/standard_scaler.node/model.pb").read_bytes())
    mean = scaler.attributes.list["mean"].t
    np.testing.assert_array_equal(np.frombuffer(mean.value, dtype=">f8"), pipe[0].mean_)
    lr = bundle_pb2.Model.FromString((pb_out / "root/logistic_regression.node/model.pb").read_bytes())
    matrix = lr.attributes.list["coefficient_matrix"].t
    assert [d.size for d in matrix.shape.dimensions] == [3, 4]
    # Column-major, as MLeap rebuilds Spark's dense matrix from it.
    np.testing.assert_array_equal(np.frombuffer(matrix.value, dtype=">f8"), pipe[1].coef_.ravel(order="F"))
    json_out = export_sklearn(pipe, tmp_path / "js", format="json")
    doc = json.loads((json_out / "root/standard_scaler.node/model.json").read_text())
    assert doc["attributes"]["std"]["type"] == "tensor"
    assert doc["attributes"]["std"]["double"] == pipe[0].scale_.tolist()


def test_gbt_start_value_becomes_a_one_leaf_tree_at_half_margin(tmp_path: Path) -> None:
    gbt = GradientBoostingClassifier(n_estimators=4, learning_rate=0.2).fit(X, Y)
    out = export_sklearn(gbt, tmp_path / "gbt", format="json")
    attrs = json.loads((out / "root/gbt_classifier.node/model.json").read_text())["attributes"]
    assert attrs["tree_weights"]["double"] == [1.0, 0.1, 0.1, 0.1, 0.1]
    start = json.loads((out / "root/gbt_classifier.node/tree0/tree.json").read_text())
    prior = np.mean(Y)
    assert start["values"][0] == pytest.approx(0.5 * np.log(prior / (1 - prior)), abs=1e-12)


def test_unsupported_estimator_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="KMeans"):
        export_sklearn(KMeans(n_clusters=2, n_init=1).fit(X), tmp_path / "k.zip")


def test_min_max_scaler_on_constant_feature_is_refused(tmp_path: Path) -> None:
    x = X.copy()
    x[:, 2] = 1.0
    pipe = make_pipeline(MinMaxScaler(), LogisticRegression()).fit(x, Y)
    with pytest.raises(InvalidArgument, match="feature 2 is constant"):
        export_sklearn(pipe, tmp_path / "m.zip")


def test_wrong_number_of_feature_names_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="3 feature names given but the model takes 4"):
        export_sklearn(LogisticRegression().fit(X, Y), tmp_path / "x.zip", features=["a", "b", "c"])


def test_cli_export_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    joblib.dump(
        RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(X, Y), tmp_path / "m.joblib"
    )
    argv = [
        "bundle",
        "export",
        str(tmp_path / "m.joblib"),
        "--out",
        str(tmp_path / "b.zip"),
        "--features",
        "a,b,c,d",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["path"] == str(tmp_path / "b.zip")
    assert len(summary["sha256"]) == 64
    assert summary["nodes"] > 2
    assert summary["seconds"] >= 0


def test_cli_export_of_missing_model_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bundle", "export", str(tmp_path / "none.joblib"), "--out", str(tmp_path / "b.zip")]) == 1
    err = capsys.readouterr().err
    assert "none.joblib: no such model file" in err
    assert err.count("\n") == 1
