"""MLeap's JVM runtime via the reference harness, on bundles from MLeap's tools and rtscore's exporter."""

from __future__ import annotations

import json
import math
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

import rtscore.cli
from rtscore.errors import Unavailable
from scorer.reference import ReferenceFailure, ReferenceHarness
from scorer.reference.layout import HarnessLayout
from scorer.reference.session import ServeSession
from tests.paths import FIXTURES

# bundle -> (frame, output columns MLeap appends, in order), read off each bundle's node.json files.
CASES: dict[str, tuple[str, list[str]]] = {
    "demo.zip": (
        "frame.demo.json",
        ["unscaled_continuous_features", "scaled_continuous_features", "demo:prediction"],
    ),
    "airbnb.model.lr.zip": (
        "frame.airbnb.json",
        [
            "unscaled_continuous_features",
            "scaled_continuous_features",
            "room_type_index",
            "host_is_superhost_index",
            "cancellation_policy_index",
            "instant_bookable_index",
            "state_index",
            "room_type_index_oh",
            "host_is_superhost_index_oh",
            "cancellation_policy_index_oh",
            "instant_bookable_index_oh",
            "state_index_oh",
            "features_lr",
            "price_prediction",
        ],
    ),
    "one_hot_encoder_pipeline.zip": (
        "frame.one_hot_encoder.json",
        ["col_1_label_le", "col_1_label_one_hot_encoded"],
    ),
}


@pytest.fixture(scope="module")
def harness() -> Iterator[ReferenceHarness]:
    """One harness (one serve JVM) for the whole module: each JVM start costs seconds."""
    with ReferenceHarness() as started:
        try:
            started.ensure_runnable()
        except Unavailable as err:
            pytest.skip(str(err))
        yield started


def _frame(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def _names(frame: dict[str, Any]) -> list[str]:
    return [field["name"] for field in frame["schema"]["fields"]]


def _dense(value: Any) -> list[float]:
    """A tensor cell as a flat list: MLeap writes all-zero vectors sparse ({indices, values, dimensions})."""
    size = math.prod(value["dimensions"])
    if "indices" not in value:
        assert len(value["values"]) == size
        return [float(v) for v in value["values"]]
    dense = [0.0] * size
    for (index,), v in zip(value["indices"], value["values"], strict=True):
        dense[index] = float(v)
    return dense


@pytest.mark.jvm
@pytest.mark.parametrize("bundle", sorted(CASES))
def test_score_keeps_inputs_and_appends_outputs(harness: ReferenceHarness, bundle: str) -> None:
    frame_name, outputs = CASES[bundle]
    frame = _frame(frame_name)
    result = harness.score(FIXTURES / bundle, frame)

    assert _names(result) == _names(frame) + outputs
    assert len(result["rows"]) == len(frame["rows"])
    width = len(frame["schema"]["fields"])
    for given, scored in zip(frame["rows"], result["rows"], strict=True):
        assert scored[:width] == given
        for value in scored[width:]:
            numbers = _dense(value) if isinstance(value, dict) else [value]
            assert numbers
            assert all(isinstance(v, float) and math.isfinite(v) for v in numbers), value


@pytest.mark.jvm
def test_demo_prediction_follows_its_scaler_and_coefficients(harness: ReferenceHarness) -> None:
    frame = _frame("frame.demo.json")
    # Enough extra rows that request and reply each span many pipe buffers.
    frame["rows"] += [[i * 0.37 - 400.0, (i % 17) * 1.5, 1e3 / (i + 1)] for i in range(3000)]
    result = harness.score(FIXTURES / "demo.zip", frame)
    with zipfile.ZipFile(FIXTURES / "demo.zip") as archive:
        models = {
            json.loads(archive.read(name))["op"]: json.loads(archive.read(name))["attributes"]
            for name in archive.namelist()
            if name.endswith("model.json")
        }
    scaler, regression = models["standard_scaler"], models["linear_regression"]
    mean, std = scaler["mean"]["double"], scaler["std"]["double"]
    coefficients, intercept = regression["coefficients"]["double"], regression["intercept"]["double"]

    for row, scored in zip(frame["rows"], result["rows"], strict=True):
        scaled = [(x - m) / s for x, m, s in zip(row, mean, std, strict=True)]
        expected = intercept + sum(c * x for c, x in zip(coefficients, scaled, strict=True))
        assert _dense(scored[4]) == pytest.approx(scaled, rel=1e-12)
        assert scored[5] == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.jvm
@pytest.mark.parametrize("bundle", sorted(CASES))
def test_resave_to_protobuf_and_back_keeps_scores(
    harness: ReferenceHarness, bundle: str, tmp_path: Path
) -> None:
    frame = _frame(CASES[bundle][0])
    original = harness.score(FIXTURES / bundle, frame)

    protobuf = harness.resave(FIXTURES / bundle, tmp_path / "resaved.zip", "protobuf")
    with zipfile.ZipFile(protobuf) as archive:
        assert json.loads(archive.read("bundle.json"))["format"] == "protobuf"
        assert "root/model.pb" in archive.namelist()
    back = harness.resave(protobuf, tmp_path / "back", "json")
    assert json.loads((back / "bundle.json").read_text())["format"] == "json"

    assert harness.score(protobuf, frame) == original
    assert harness.score(back, frame) == original


@pytest.mark.jvm
@pytest.mark.parametrize("fmt", ["protobuf", "json"])
def test_mleap_agrees_with_sklearn_on_a_forest_rtscore_exported(
    harness: ReferenceHarness, tmp_path: Path, fmt: Literal["json", "protobuf"]
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from scorer.export import export_sklearn

    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 4))
    forest = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0)
    forest.fit(x, (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int))
    names = ["amount", "age", "velocity", "distance"]
    bundle = export_sklearn(forest, tmp_path / "forest.zip", format=fmt, features=names)
    frame = {"schema": {"fields": [{"name": n, "type": "double"} for n in names]}, "rows": x[:60].tolist()}

    result = harness.score(bundle, frame)

    column = _names(result).index("probability")
    probabilities = np.array([_dense(row[column]) for row in result["rows"]])
    np.testing.assert_allclose(probabilities, forest.predict_proba(x[:60]), rtol=0, atol=1e-12)


@pytest.mark.jvm
def test_frame_missing_inputs_is_one_clear_error(harness: ReferenceHarness) -> None:
    with pytest.raises(ReferenceFailure, match=r"invalid fields: demo:a"):
        harness.score(FIXTURES / "demo.zip", _frame("frame.one_hot_encoder.json"))
    # The shared JVM survives a bad request.
    assert harness.score(FIXTURES / "demo.zip", _frame("frame.demo.json"))["rows"]


@pytest.mark.jvm
def test_truncated_bundle_is_one_clear_error(harness: ReferenceHarness, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes((FIXTURES / "demo.zip").read_bytes()[:2000])
    with pytest.raises(ReferenceFailure, match=r"truncated\.zip cannot be opened as a zip file"):
        harness.score(truncated, _frame("frame.demo.json"))
    assert harness.score(FIXTURES / "demo.zip", _frame("frame.demo.json"))["rows"]


@pytest.mark.jvm
@pytest.mark.parametrize(("mode", "batch"), [("frame", 1), ("row", 3)])
def test_bench_reports_latency_summary_after_warmup(
    harness: ReferenceHarness, mode: Literal["frame", "row"], batch: int
) -> None:
    summary = harness.bench(
        FIXTURES / "demo.zip", FIXTURES / "frame.demo.json", iterations=300, warmup=50, batch=batch, mode=mode
    )

    assert (summary["mode"], summary["iterations"], summary["batch"]) == (mode, 300, batch)
    assert summary["rows"] == 4
    assert summary["load_seconds"] > 0
    latency = summary["latency_ms"]
    assert 0 < latency["min"] <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert latency["min"] <= latency["avg"] <= latency["max"]
    assert latency["stddev"] >= 0


@pytest.fixture
def reference_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """`rtscore` with only the reference group, so the test does not depend on other groups' modules."""
    groups = [group for group in rtscore.cli.GROUPS if group[0] == "reference"]
    monkeypatch.setattr(rtscore.cli, "GROUPS", groups)


@pytest.mark.jvm
@pytest.mark.usefixtures("reference_cli")
def test_cli_score_prints_mleap_json_leapframe(
    harness: ReferenceHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, frame = FIXTURES / "one_hot_encoder_pipeline.zip", FIXTURES / "frame.one_hot_encoder.json"
    status = rtscore.cli.main(["reference", "score", str(bundle), "--frame", str(frame)])

    out = capsys.readouterr().out
    assert status == 0
    assert json.loads(out) == harness.score(bundle, _frame("frame.one_hot_encoder.json"))


@pytest.mark.usefixtures("reference_cli")
def test_cli_names_a_missing_bundle_on_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.zip"
    status = rtscore.cli.main(["reference", "score", str(missing), "--frame", str(missing)])

    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1
    assert f"bundle {missing} does not exist" in err


def test_unbuilt_harness_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match=r"run `rtscore reference build`"):
        HarnessLayout(tmp_path).classpath()


@dataclass(frozen=True)
class _ScriptedProcess(HarnessLayout):
    """A Python process in the harness's place: a hung or crashing JVM, without the JVM."""

    script: str = ""

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", self.script]


def test_silent_harness_is_killed_after_the_reply_timeout(tmp_path: Path) -> None:
    hangs = "import time; print('ready\\t0.20.0', flush=True); time.sleep(60)"
    session = ServeSession(_ScriptedProcess(tmp_path, hangs), reply_timeout=0.5)
    try:
        assert session.mleap_version == "0.20.0"
        with pytest.raises(Unavailable, match=r"did not answer within 0\.5 s"):
            session.request("score", "bundle.zip", "{}")
        with pytest.raises(Unavailable, match=r"has exited"):
            session.request("score", "bundle.zip", "{}")
    finally:
        session.close()


def test_harness_dying_at_start_reports_its_last_words(tmp_path: Path) -> None:
    dies = "import sys; sys.stderr.write('Error: could not find main class\\n'); sys.exit(1)"
    with pytest.raises(Unavailable, match=r"exited unexpectedly: Error: could not find main class"):
        ServeSession(_ScriptedProcess(tmp_path, dies), reply_timeout=30)
