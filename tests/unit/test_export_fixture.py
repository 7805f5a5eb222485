"""The benchmark fixture builder: a forest near the node target, a bundle, a frame, cached by parameters."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np

from benchmarks.fixture import build_fixture
from scorer.bundle import load_bundle
from scorer.frame import LeapFrame


def test_fixture_builds_forest_bundle_frame_and_meta(tmp_path: Path) -> None:
    paths = build_fixture(trees=3, target_nodes=300, n_features=6, rows=40, seed=1, cache_dir=tmp_path)
    meta = json.loads(paths.meta_json.read_text())
    assert meta["trees"] == 3
    assert meta["features"] == 6
    assert 250 <= meta["nodes"] / 3 <= 301
    frame = json.loads(paths.frame_json.read_text())
    assert [f["name"] for f in frame["schema"]["fields"]] == [f"f{i}" for i in range(6)]
    x = np.array(frame["rows"])
    assert x.shape == (40, 6)
    np.testing.assert_array_equal(x.astype(np.float32).astype(np.float64), x)
    model = joblib.load(paths.model_joblib)
    scored = load_bundle(paths.bundle, cache=None).transform(LeapFrame.from_mleap_json(frame))
    np.testing.assert_allclose(np.asarray(scored.column("probability")), model.predict_proba(x), atol=1e-9)


def test_second_build_with_same_parameters_reuses_the_cache(tmp_path: Path) -> None:
    first = build_fixture(trees=2, target_nodes=100, n_features=4, rows=10, seed=2, cache_dir=tmp_path)
    stamp = first.bundle.stat().st_mtime_ns
    second = build_fixture(trees=2, target_nodes=100, n_features=4, rows=10, seed=2, cache_dir=tmp_path)
    assert second == first
    assert second.bundle.stat().st_mtime_ns == stamp
    other = build_fixture(trees=2, target_nodes=100, n_features=4, rows=10, seed=3, cache_dir=tmp_path)
    assert other.bundle.parent != first.bundle.parent
