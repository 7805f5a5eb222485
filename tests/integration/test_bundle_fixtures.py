"""Bundles exported by MLeap's own tools load and score; with Java present, exactly as MLeap's JVM does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scorer.bundle import load_bundle
from scorer.frame import LeapFrame
from scorer.trees import ForestCache
from tests.paths import FIXTURES

CASES = {
    "demo.zip": "frame.demo.json",
    "airbnb.model.lr.zip": "frame.airbnb.json",
    "one_hot_encoder_pipeline.zip": "frame.one_hot_encoder.json",
}

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no MLeap fixtures at {FIXTURES}")


def _frame(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def _model_json(bundle: str, node_dir: str) -> dict[str, Any]:
    """A node's model.json read straight from the zip, independently of rtscore's reader."""
    with zipfile.ZipFile(FIXTURES / bundle) as zf:
        name = next(n for n in zf.namelist() if n.endswith(f"{node_dir}/model.json"))
        data: dict[str, Any] = json.loads(zf.read(name))
    return data


def _score(bundle: str, tmp_path: Path) -> LeapFrame:
    loaded = load_bundle(FIXTURES / bundle, cache=ForestCache(tmp_path / "cache"))
    return loaded.transform(LeapFrame.from_mleap_json(_frame(CASES[bundle])))


def test_demo_pipeline_is_scaled_linear_regression(tmp_path: Path) -> None:
    out = _score("demo.zip", tmp_path)
    scaler = _model_json("demo.zip", "standard_scaler_7a70a387-bd53-11e7-b831-6c40089417e6.node")[
        "attributes"
    ]
    lr = _model_json("demo.zip", "linear_regression_7a70b7fd-bd53-11e7-8c89-6c40089417e6.node")["attributes"]
    x = np.array([row for row in _frame("frame.demo.json")["rows"]], dtype=float)
    scaled = (x - np.array(scaler["mean"]["double"])) / np.array(scaler["std"]["double"])
    expected = scaled @ np.array(lr["coefficients"]["double"]) + lr["intercept"]["double"]
    np.testing.assert_allclose(out.column("demo:prediction"), expected, rtol=1e-12)
    assert out.names[:3] == ["demo:a", "demo:c", "demo:d"]


def test_airbnb_prediction_is_the_dot_product_of_its_assembled_features(tmp_path: Path) -> None:
    out = _score("airbnb.model.lr.zip", tmp_path)
    lr = _model_json("airbnb.model.lr.zip", "linear_regression.node")["attributes"]
    std = np.array(
        _model_json("airbnb.model.lr.zip", "continuous_feature_scaler.node")["attributes"]["std"]["double"]
    )
    features = out.column("features_lr")
    np.testing.assert_allclose(features[:, -8:], out.column("unscaled_continuous_features") / std, rtol=1e-12)
    expected = features @ np.array(lr["coefficients"]["double"]) + lr["intercept"]["double"]
    np.testing.assert_allclose(out.column("price_prediction"), expected, rtol=1e-12)
    labels = _model_json("airbnb.model.lr.zip", "string_indexer_state.node")["attributes"]["labels"]["string"]
    state = _frame("frame.airbnb.json")["rows"][0][0]
    assert out.column("state_index")[0] == labels.index(state)
    assert out.column("state_index_oh")[0].tolist() == [float(i == labels.index(state)) for i in range(9)]


def test_one_hot_pipeline_keeps_unseen_labels_as_an_all_zero_vector(tmp_path: Path) -> None:
    out = _score("one_hot_encoder_pipeline.zip", tmp_path)
    np.testing.assert_array_equal(out.column("col_1_label_le"), [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(
        out.column("col_1_label_one_hot_encoded"), [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    )


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RTSCORE_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "rtscore.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_scores_and_inspects_like_the_library(tmp_path: Path) -> None:
    scored = _cli(
        "bundle",
        "score",
        str(FIXTURES / "demo.zip"),
        "--frame",
        str(FIXTURES / "frame.demo.json"),
        cache=tmp_path,
    )
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout) == _score("demo.zip", tmp_path).to_mleap_json()
    inspected = _cli("bundle", "inspect", str(FIXTURES / "airbnb.model.lr.zip"), cache=tmp_path)
    info = json.loads(inspected.stdout)
    assert info["format"] == "json"
    assert info["mleap_version"] == "0.8.0-SNAPSHOT"
    assert [c["name"] for c in info["root"]["children"]] == ["feature_pipeline", "linear_regression"]


def test_cli_errors_are_one_line_naming_the_column(tmp_path: Path) -> None:
    frame = tmp_path / "bad.json"
    frame.write_text(
        json.dumps({"schema": {"fields": [{"name": "demo:a", "type": "double"}]}, "rows": [[1.0]]})
    )
    result = _cli("bundle", "score", str(FIXTURES / "demo.zip"), "--frame", str(frame), cache=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "missing column 'demo:c'" in result.stderr


def test_cli_reader_going_away_ends_quietly(tmp_path: Path) -> None:
    # `rtscore bundle score … | head`: the pipe closes before the frame is written
    command = [
        "bundle",
        "score",
        str(FIXTURES / "airbnb.model.lr.zip"),
        "--frame",
        str(FIXTURES / "frame.airbnb.json"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtscore.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "RTSCORE_CACHE_DIR": str(tmp_path)},
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 141
    assert stderr == b""


# --- parity with MLeap's JVM runtime --------------------------------------------------------------


def assert_frames_match(ours: dict[str, Any], theirs: dict[str, Any], rtol: float = 1e-9) -> None:
    """Same schema, same rows, sparse vectors where MLeap has them; numbers equal to `rtol` relative."""
    assert ours["schema"] == theirs["schema"]
    assert len(ours["rows"]) == len(theirs["rows"])
    for r, (a_row, b_row) in enumerate(zip(ours["rows"], theirs["rows"], strict=True)):
        for field, a, b in zip(ours["schema"]["fields"], a_row, b_row, strict=True):
            where = f"row {r} column {field['name']}"
            if isinstance(a, dict):
                assert set(a) == set(b), where
                assert a["dimensions"] == b["dimensions"], where
                assert a.get("indices") == b.get("indices"), where
                np.testing.assert_allclose(a["values"], b["values"], rtol=rtol, atol=1e-12, err_msg=where)
            elif isinstance(a, float) or isinstance(b, float):
                np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=where)
            else:
                assert a == b, where


@pytest.fixture(scope="module")
def harness() -> Iterator[Any]:
    """MLeap's JVM runtime behind the reference harness, when Java and the built harness exist."""
    from scorer.reference import ReferenceHarness
    from scorer.reference.layout import HarnessLayout

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed")
    if not HarnessLayout.default().is_built():
        pytest.skip("the reference harness is not built (rtscore reference build)")
    with ReferenceHarness() as h:
        yield h


@pytest.mark.jvm
@pytest.mark.parametrize("bundle", sorted(CASES))
def test_scores_equal_mleaps_jvm_runtime(harness: Any, bundle: str, tmp_path: Path) -> None:
    theirs = harness.score(FIXTURES / bundle, _frame(CASES[bundle]))
    assert_frames_match(_score(bundle, tmp_path).to_mleap_json(), theirs)


@pytest.mark.jvm
@pytest.mark.parametrize("bundle", sorted(CASES))
def test_protobuf_resaves_by_mleap_score_the_same(harness: Any, bundle: str, tmp_path: Path) -> None:
    resaved = harness.resave(FIXTURES / bundle, tmp_path / "resaved.zip", "protobuf")
    loaded = load_bundle(resaved, cache=ForestCache(tmp_path / "cache"))
    assert loaded.format == "protobuf"
    ours = loaded.transform(LeapFrame.from_mleap_json(_frame(CASES[bundle]))).to_mleap_json()
    assert_frames_match(ours, harness.score(resaved, _frame(CASES[bundle])))
