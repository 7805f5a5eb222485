"""Reading Bundle.ML: both formats, zip and directory, and every kind of bad bundle rejected cleanly."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scorer.bundle import ArchiveLimits, BundleError, inspect_bundle, load_bundle
from tests.unit.bundle_files import (
    FORMATS,
    NodeSpec,
    TreeSpec,
    bundle_files,
    doubles_frame,
    pipeline,
    tree_bytes,
    write_bundle,
    write_files,
)

LINEAR = NodeSpec(
    "lr",
    "linear_regression",
    {"coefficients": ("tensor", np.array([1.0, 2.0])), "intercept": ("double", 0.5)},
    [("features", "f")],
    [("prediction", "y")],
)
TREE: TreeSpec = [("split", 0, 0.5), ("leaf", [1.0]), ("leaf", [2.0])]
DTREE = NodeSpec(
    "dt",
    "decision_tree_regression",
    {"num_features": ("long", 1)},
    [("features", "f")],
    [("prediction", "y")],
    tree=TREE,
)


def _zip(tmp_path: Path, files: dict[str, bytes]) -> Path:
    out = tmp_path / "bundle.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out


@pytest.mark.parametrize(("fmt", "zipped"), FORMATS)
def test_every_layout_loads_to_the_same_scores_and_inspection(tmp_path: Path, fmt: str, zipped: bool) -> None:
    path = write_bundle(pipeline(LINEAR), tmp_path, fmt, zipped)
    bundle = load_bundle(path, cache=None)
    out = bundle.transform(doubles_frame(f=np.array([[1.0, 1.0], [2.0, -1.0]])))
    np.testing.assert_allclose(out.column("y"), [3.5, 0.5])
    info = inspect_bundle(path)
    assert set(info) == {"name", "format", "mleap_version", "sha256", "root", "input_schema", "output_schema"}
    assert info["format"] == fmt
    assert info["root"]["op"] == "pipeline"
    assert info["root"]["children"][0]["op"] == "linear_regression"
    assert info["input_schema"] == [
        {"name": "f", "type": {"type": "tensor", "base": "double", "dimensions": [2]}}
    ]
    assert info["output_schema"] == [
        {"name": "y", "type": {"type": "basic", "base": "double", "isNullable": False}}
    ]
    if zipped:
        assert bundle.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_directory_digest_changes_when_a_file_changes(tmp_path: Path) -> None:
    path = write_bundle(pipeline(LINEAR), tmp_path)
    before = load_bundle(path, cache=None).sha256
    (path / "bundle.json").write_text((path / "bundle.json").read_text() + " ")
    assert load_bundle(path, cache=None).sha256 != before


def test_zip_with_a_top_level_folder_is_accepted(tmp_path: Path) -> None:
    files = {f"mybundle/{k}": v for k, v in bundle_files(LINEAR).items()}
    assert load_bundle(_zip(tmp_path, files), cache=None).root_op.op == "linear_regression"


@pytest.mark.parametrize(
    ("name", "message"),
    [("../evil.json", "path traversal"), ("/etc/evil", "absolute path"), ("root\\..\\x", "backslash")],
)
def test_zip_slip_names_are_rejected(tmp_path: Path, name: str, message: str) -> None:
    files = {**bundle_files(LINEAR), name: b"{}"}
    with pytest.raises(BundleError, match=message):
        load_bundle(_zip(tmp_path, files), cache=None)


def test_zip_bomb_ratio_is_rejected_from_the_central_directory(tmp_path: Path) -> None:
    files = {**bundle_files(LINEAR), "root/padding.bin": b"\0" * (8 << 20)}
    with pytest.raises(BundleError, match=r"padding.bin: compression ratio \d+ exceeds 200"):
        load_bundle(_zip(tmp_path, files), cache=None)


def test_total_uncompressed_size_limit(tmp_path: Path) -> None:
    path = _zip(tmp_path, bundle_files(LINEAR))
    with pytest.raises(BundleError, match="uncompressed size exceeds 100 bytes"):
        load_bundle(path, cache=None, limits=ArchiveLimits(max_total_bytes=100))


def test_entry_whose_sizes_lie_is_rejected_while_inflating(tmp_path: Path) -> None:
    files = bundle_files(LINEAR)
    path = _zip(tmp_path, files)
    raw = bytearray(path.read_bytes())
    # shrink the declared uncompressed size of model.json in the central directory
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("root/model.json")
    cd = raw.find(b"PK\x01\x02")
    while cd != -1:
        name_len = int.from_bytes(raw[cd + 28 : cd + 30], "little")
        if raw[cd + 46 : cd + 46 + name_len] == b"root/model.json":
            raw[cd + 24 : cd + 28] = (info.file_size // 4).to_bytes(4, "little")
        cd = raw.find(b"PK\x01\x02", cd + 4)
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"root/model.json"):
        load_bundle(path, cache=None)


def test_not_a_zip_nor_a_directory(tmp_path: Path) -> None:
    bad = tmp_path / "junk.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(BundleError, match=r"junk.zip: not a zip file"):
        load_bundle(bad, cache=None)
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "absent.zip", cache=None)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("bundle.json", "missing file bundle.json"),
        ("root/lr.node/model.json", "missing file root/lr.node/model.json"),
        ("root/lr.node/node.json", "missing file root/lr.node/node.json"),
    ],
)
def test_missing_files_are_named(tmp_path: Path, drop: str, message: str) -> None:
    files = bundle_files(pipeline(LINEAR))
    del files[drop]
    with pytest.raises(BundleError, match=message):
        load_bundle(write_files(files, tmp_path, zipped=True), cache=None)


def test_unknown_op_names_the_node(tmp_path: Path) -> None:
    node = NodeSpec("x", "quantum_regression", {}, [("input", "a")], [("output", "b")])
    with pytest.raises(BundleError, match=r"node root/x.node: unsupported op 'quantum_regression'"):
        load_bundle(write_bundle(pipeline(node), tmp_path), cache=None)


def test_pipeline_child_names_cannot_escape_the_bundle(tmp_path: Path) -> None:
    files = bundle_files(pipeline(LINEAR))
    model = json.loads(files["root/model.json"])
    model["attributes"]["nodes"]["string"] = ["../../outside"]
    files["root/model.json"] = json.dumps(model).encode()
    with pytest.raises(BundleError, match="path traversal"):
        load_bundle(write_files(files, tmp_path, zipped=False), cache=None)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (
            {"coefficients": ("string", "1,2"), "intercept": ("double", 0.5)},
            "'coefficients' is a scalar, expected a tensor",
        ),
        (
            {"coefficients": ("tensor", np.ones(2)), "intercept": ("string", "x")},
            "'intercept' must hold a double",
        ),
        ({"intercept": ("double", 0.5)}, "missing attribute 'coefficients'"),
        ({"coefficients": ("tensor", np.ones((2, 2))), "intercept": ("double", 0.5)}, r"shape \[2, 2\]"),
    ],
)
def test_wrong_attribute_types_and_shapes_name_file_and_field(
    tmp_path: Path, attrs: dict, message: str
) -> None:
    node = NodeSpec("lr", "linear_regression", attrs, [("features", "f")], [("prediction", "y")])
    for fmt in ("json", "protobuf"):
        (tmp_path / fmt).mkdir()
        with pytest.raises(BundleError, match=rf"root/model\.(json|pb).*{message}"):
            load_bundle(write_bundle(node, tmp_path / fmt, fmt), cache=None)


def test_tensor_whose_dimensions_do_not_match_its_values(tmp_path: Path) -> None:
    files = bundle_files(LINEAR)
    model = json.loads(files["root/model.json"])
    model["attributes"]["coefficients"]["shape"]["dimensions"][0]["size"] = 5
    files["root/model.json"] = json.dumps(model).encode()
    with pytest.raises(BundleError, match=r"'coefficients': tensor dimensions \[5\] do not match 2 values"):
        load_bundle(write_files(files, tmp_path, zipped=False), cache=None)


def test_nan_threshold_in_a_tree_is_rejected(tmp_path: Path) -> None:
    files = bundle_files(DTREE)
    files["root/tree.json"] = tree_bytes(
        [("split", 0, float("nan")), ("leaf", [1.0]), ("leaf", [2.0])], "json"
    )
    with pytest.raises(BundleError, match=r"tree.json"):
        load_bundle(write_files(files, tmp_path, zipped=False), cache=None)


def test_tree_missing_a_child_is_rejected(tmp_path: Path) -> None:
    files = bundle_files(DTREE)
    files["root/tree.json"] = tree_bytes([("split", 0, 0.5), ("leaf", [1.0])], "json")
    with pytest.raises(BundleError, match=r"tree.json"):
        load_bundle(write_files(files, tmp_path, zipped=False), cache=None)


def test_truncated_tree_pb_is_rejected(tmp_path: Path) -> None:
    files = bundle_files(DTREE, "protobuf")
    files["root/tree.pb"] = files["root/tree.pb"][:-3]
    with pytest.raises(BundleError, match=r"tree.pb"):
        load_bundle(write_files(files, tmp_path, zipped=True), cache=None)


def test_leaf_width_must_match_the_model(tmp_path: Path) -> None:
    files = bundle_files(DTREE)
    files["root/tree.json"] = tree_bytes(
        [("split", 0, 0.5), ("leaf", [1.0, 2.0]), ("leaf", [2.0, 1.0])], "json"
    )
    with pytest.raises(BundleError, match="leaves hold 2 values, expected 1"):
        load_bundle(write_files(files, tmp_path, zipped=False), cache=None)


def test_bundle_json_with_unknown_format(tmp_path: Path) -> None:
    files = bundle_files(LINEAR)
    files["bundle.json"] = json.dumps({"name": "x", "format": "xml", "version": "0.20.0"}).encode()
    with pytest.raises(BundleError, match=r"bundle.json: field 'format' must be 'json' or 'protobuf'"):
        load_bundle(write_files(files, tmp_path, zipped=True), cache=None)


def test_directory_symlink_out_of_the_bundle_is_rejected(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of any bundle")
    (tmp_path / "b").mkdir()
    path = write_bundle(pipeline(LINEAR), tmp_path / "b")
    (path / "root" / "leak.json").symlink_to(secret)
    with pytest.raises(BundleError, match=r"leak\.json links outside the bundle directory"):
        load_bundle(path, cache=None)


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_corrupted_bundles_fail_only_with_domain_errors(tmp_path: Path, fmt: str) -> None:
    import random

    from rtscore.errors import RtscoreError
    from scorer.trees import ForestCache

    rng = random.Random(fmt)
    base = bundle_files(pipeline(LINEAR, DTREE), fmt)
    outcomes = {"loaded": 0, "rejected": 0}
    for i in range(60):
        files = dict(base)
        name = rng.choice(sorted(files))
        data = bytearray(files[name])
        for _ in range(rng.randint(1, 4)):
            if data and rng.random() < 0.7:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                del data[rng.randrange(len(data) + 1) :]
        files[name] = bytes(data)
        (tmp_path / str(i)).mkdir()
        path = write_files(files, tmp_path / str(i), zipped=True)
        try:
            bundle = load_bundle(path, cache=ForestCache(tmp_path / "cache"))
            bundle.transform(doubles_frame(f=np.ones((2, 2))))
            outcomes["loaded"] += 1
        except RtscoreError:  # anything else escapes and fails the test with its traceback
            outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0


def test_split_on_a_feature_past_num_features_is_rejected_before_compiling(tmp_path: Path) -> None:
    files = bundle_files(DTREE, "protobuf")
    files["root/tree.pb"] = tree_bytes([("split", 5, 0.5), ("leaf", [1.0]), ("leaf", [2.0])], "protobuf")
    with pytest.raises(BundleError, match=r"tree\.pb: node 0 splits on feature 5, but .*'num_features' is 1"):
        load_bundle(write_files(files, tmp_path, zipped=True), cache=None)
