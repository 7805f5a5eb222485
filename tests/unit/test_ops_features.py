"""string_indexer, one_hot_encoder (both forms), string_map and vector_assembler follow MLeap."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from scorer.bundle import Bundle, FrameError
from scorer.frame import DataType, Field, LeapFrame
from tests.unit.bundle_files import NodeSpec, doubles_frame, load, pipeline

LABELS = ["red", "green", "blue"]


def _strings(values: list[str]) -> LeapFrame:
    return LeapFrame([Field("color", DataType.scalar("string"))], [np.array(values, dtype=object)])


def _indexer(handle: str) -> NodeSpec:
    attrs = {"labels": ("string_list", LABELS), "handle_invalid": ("string", handle)}
    return NodeSpec("si", "string_indexer", attrs, [("input", "color")], [("output", "idx")])


def test_string_indexer_maps_labels_to_positions(tmp_path: Path) -> None:
    out = load(_indexer("error"), tmp_path).transform(_strings(["blue", "red", "green", "red"]))
    np.testing.assert_array_equal(out.column("idx"), [2.0, 0.0, 1.0, 0.0])


def test_string_indexer_error_names_the_unseen_label(tmp_path: Path) -> None:
    with pytest.raises(FrameError, match=r"column 'color'.*unseen label 'pink'"):
        load(_indexer("error"), tmp_path).transform(_strings(["red", "pink"]))


def test_string_indexer_keep_maps_unseen_labels_past_the_end(tmp_path: Path) -> None:
    out = load(_indexer("keep"), tmp_path, "protobuf").transform(_strings(["pink", "green"]))
    np.testing.assert_array_equal(out.column("idx"), [3.0, 1.0])


def test_string_indexer_skip_drops_rows_with_unseen_labels(tmp_path: Path) -> None:
    out = load(_indexer("skip"), tmp_path).transform(_strings(["pink", "green", "mauve", "red"]))
    assert out.n_rows == 2
    assert out.column("color").tolist() == ["green", "red"]
    np.testing.assert_array_equal(out.column("idx"), [1.0, 0.0])


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        # pre-Spark-2.3 form without handle_invalid: drop_last means keep, width stays `size`
        ({"size": ("long", 3), "drop_last": ("boolean", True)}, [[1, 0, 0], [0, 0, 1], [0, 0, 0]]),
        (
            {"size": ("long", 3), "drop_last": ("boolean", False), "handle_invalid": ("string", "keep")},
            [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        ),
    ],
)
def test_old_one_hot_encoder_widths_follow_drop_last_and_keep(
    tmp_path: Path, attrs: dict, expected: list
) -> None:
    node = NodeSpec("ohe", "one_hot_encoder", attrs, [("input", "i")], [("output", "v")])
    out = load(node, tmp_path).transform(doubles_frame(i=np.array([0.0, 2.0, 3.0])))
    np.testing.assert_array_equal(out.column("v"), expected)


def test_new_one_hot_encoder_encodes_each_column_and_rejects_unseen_values(tmp_path: Path) -> None:
    attrs = {
        "category_sizes": ("long_list", [2, 3]),
        "drop_last": ("boolean", True),
        "handle_invalid": ("string", "error"),
    }
    node = NodeSpec(
        "ohe",
        "one_hot_encoder",
        attrs,
        [("input0", "a"), ("input1", "b")],
        [("output0", "va"), ("output1", "vb")],
    )
    bundle = load(node, tmp_path, "protobuf")
    out = bundle.transform(doubles_frame(a=np.array([0.0, 1.0]), b=np.array([2.0, 1.0])))
    np.testing.assert_array_equal(out.column("va"), [[1.0], [0.0]])
    np.testing.assert_array_equal(out.column("vb"), [[0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(FrameError, match=r"column 'b'.*unseen value 5.0"):
        bundle.transform(doubles_frame(a=np.array([0.0]), b=np.array([5.0])))
    with pytest.raises(FrameError, match=r"column 'a'.*must be an integer"):
        bundle.transform(doubles_frame(a=np.array([0.5]), b=np.array([1.0])))


def test_vector_assembler_concatenates_scalars_and_vectors(tmp_path: Path) -> None:
    attrs = {"input_shapes": ("shapes", [("scalar", None), ("tensor", 2), ("scalar", None)])}
    node = NodeSpec(
        "va",
        "vector_assembler",
        attrs,
        [("input0", "a"), ("input1", "v"), ("input2", "b")],
        [("output", "out")],
    )
    frame = doubles_frame(
        a=np.array([1.0, 2.0]), v=np.array([[3.0, 4.0], [5.0, 6.0]]), b=np.array([7.0, 8.0])
    )
    for fmt in ("json", "protobuf"):
        out = load(node, tmp_path, fmt).transform(frame)
        np.testing.assert_array_equal(out.column("out"), [[1, 3, 4, 7], [2, 5, 6, 8]])
        assert out.field("out").dtype == DataType.tensor("double", (4,))


def _scalar_assembler(tmp_path: Path) -> Bundle:
    attrs = {"input_shapes": ("shapes", [("scalar", None)] * 3)}
    node = NodeSpec("va", "vector_assembler", attrs, [("input0", "a"), ("input1", "b"), ("input2", "c")],
                    [("output", "out")])  # fmt: skip
    return load(node, tmp_path)


def _frame(**columns: np.ndarray) -> LeapFrame:
    kinds = {"f": "double", "i": "long", "b": "boolean", "O": "string", "U": "string"}
    fields = [
        Field(n, DataType.scalar(kinds[a.dtype.kind]) if a.ndim == 1 else DataType.tensor("double", (1,)))
        for n, a in columns.items()
    ]
    return LeapFrame(fields, list(columns.values()))


@pytest.mark.parametrize("n", [1, 3])
def test_scalar_assembler_takes_numbers_of_any_type_as_doubles(tmp_path: Path, n: int) -> None:
    bundle = _scalar_assembler(tmp_path)
    frame = _frame(a=np.arange(n) + 0.5, b=np.arange(n) * 10, c=np.arange(n) % 2 == 0)
    out = bundle.transform(frame).column("out")
    assert out.dtype == np.float64
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.c_[np.arange(n) + 0.5, np.arange(n) * 10.0, np.arange(n) % 2 == 0])


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda n: np.array(["x"] * n, dtype=object), "must be a numeric scalar"),
        (lambda n: np.array(["x"] * n), "must be a numeric scalar"),  # fixed-width strings
        (lambda n: np.ones((n, 1)), "must be a numeric scalar"),  # a tensor where a scalar belongs
    ],
)
def test_scalar_assembler_names_a_column_it_cannot_use(
    tmp_path: Path, n: int, bad: Callable[[int], np.ndarray], message: str
) -> None:
    bundle = _scalar_assembler(tmp_path)
    frame = _frame(a=np.ones(n), b=bad(n), c=np.ones(n))
    with pytest.raises(FrameError, match=rf"column 'b'.*{message}"):
        bundle.transform(frame)


def test_string_map_uses_default_for_unknown_labels_when_keeping(tmp_path: Path) -> None:
    attrs = {
        "labels": ("string_list", ["a", "b"]),
        "values": ("double_list", [10.0, 20.0]),
        "handle_invalid": ("string", "keep"),
        "default_value": ("double", -1.0),
    }
    node = NodeSpec("sm", "string_map", attrs, [("input", "color")], [("output", "x")])
    out = load(node, tmp_path).transform(_strings(["b", "zzz", "a"]))
    np.testing.assert_array_equal(out.column("x"), [20.0, -1.0, 10.0])


def test_pipeline_chains_indexer_into_encoder_and_reports_schemas(tmp_path: Path) -> None:
    encoder = NodeSpec(
        "ohe",
        "one_hot_encoder",
        {"size": ("long", 3), "drop_last": ("boolean", False)},
        [("input", "idx")],
        [("output", "vec")],
    )
    bundle = load(pipeline(_indexer("keep"), encoder), tmp_path)
    assert [f.name for f in bundle.input_schema] == ["color"]
    assert [f.name for f in bundle.output_schema] == ["idx", "vec"]
    out = bundle.transform(_strings(["green"]))
    np.testing.assert_array_equal(out.column("vec"), [[0.0, 1.0, 0.0]])


def test_single_row_frames_score_like_the_same_rows_in_a_batch(tmp_path: Path) -> None:
    encoder = NodeSpec(
        "ohe",
        "one_hot_encoder",
        {"size": ("long", 3), "drop_last": ("boolean", True)},
        [("input", "idx")],
        [("output", "vec")],
    )
    bundle = load(pipeline(_indexer("keep"), encoder), tmp_path)
    colors = ["green", "pink", "red", "blue"]
    batch = bundle.transform(_strings(colors))
    for i, color in enumerate(colors):
        one = bundle.transform(_strings([color]))
        np.testing.assert_array_equal(one.column("idx"), batch.column("idx")[i : i + 1])
        np.testing.assert_array_equal(one.column("vec"), batch.column("vec")[i : i + 1])
    attrs = {"size": ("long", 3), "drop_last": ("boolean", False), "handle_invalid": ("string", "error")}
    strict = NodeSpec("ohe", "one_hot_encoder", attrs, [("input", "idx")], [("output", "vec")])
    (tmp_path / "strict").mkdir()
    strict_bundle = load(strict, tmp_path / "strict")
    with pytest.raises(FrameError, match=r"unseen value 7.0"):
        strict_bundle.transform(doubles_frame(idx=np.array([7.0])))
    with pytest.raises(FrameError, match=r"invalid label nan"):
        strict_bundle.transform(doubles_frame(idx=np.array([np.nan])))


def test_json_output_uses_sparse_vectors_where_mleap_does(tmp_path: Path) -> None:
    encoder = NodeSpec(
        "ohe",
        "one_hot_encoder",
        {"size": ("long", 3), "drop_last": ("boolean", False)},
        [("input", "i")],
        [("output", "vec")],
    )
    attrs = {
        "input_shapes": ("shapes", [("tensor", 3), ("scalar", None), ("scalar", None), ("scalar", None)])
    }
    sockets = [("input0", "vec"), ("input1", "a"), ("input2", "b"), ("input3", "c")]
    assembler = NodeSpec("va", "vector_assembler", attrs, sockets, [("output", "all")])
    bundle = load(pipeline(encoder, assembler), tmp_path)
    zeros = np.zeros(2)
    out = bundle.transform(
        doubles_frame(i=np.array([1.0, 2.0]), a=zeros, b=np.array([0.0, 5.0]), c=np.array([0.0, 6.0]))
    )
    rows = out.to_mleap_json()["rows"]
    assert rows[0][4] == {"indices": [[1]], "values": [1.0], "dimensions": [3]}
    # Spark's `compressed`: sparse while 1.5 * (non-zeros + 1) < size, else dense
    assert rows[0][5] == {"indices": [[1]], "values": [1.0], "dimensions": [6]}
    assert rows[1][5] == {"values": [0.0, 0.0, 1.0, 0.0, 5.0, 6.0], "dimensions": [6]}
