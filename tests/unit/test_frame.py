"""LeapFrame: MLeap's JSON format in and out, schema types, column operations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scorer.frame import DataType, Field, FrameError, LeapFrame, compressed_rows

FRAME = {
    "schema": {
        "fields": [
            {"name": "s", "type": "string"},
            {"name": "d", "type": "double"},
            {"name": "i", "type": "integer"},
            {"name": "v", "type": {"type": "tensor", "base": "double", "dimensions": [2]}},
            {"name": "p", "type": {"type": "basic", "base": "double", "isNullable": False}},
        ]
    },
    "rows": [
        ["a", 1.5, 3, {"values": [1.0, 2.0], "dimensions": [2]}, 0.25],
        ["b", None, -1, {"values": [3.0, 4.0], "dimensions": [2]}, 1.0],
    ],
}


def test_json_frame_becomes_numpy_columns_once() -> None:
    frame = LeapFrame.from_mleap_json(FRAME)
    assert frame.n_rows == 2
    assert frame.column("s").dtype == object
    assert frame.column("i").dtype == np.int64
    assert np.isnan(frame.column("d")[1])
    np.testing.assert_array_equal(frame.column("v"), [[1.0, 2.0], [3.0, 4.0]])
    assert frame.field("i").dtype == DataType("int", "scalar", None, True)
    assert frame.field("p").dtype.nullable is False


def test_json_round_trip_keeps_mleap_type_names_and_nulls() -> None:
    assert LeapFrame.from_mleap_json(FRAME).to_mleap_json() == FRAME


def test_sparse_tensor_rows_are_densified() -> None:
    frame = LeapFrame.from_mleap_json(
        {
            "schema": {
                "fields": [{"name": "v", "type": {"type": "tensor", "base": "double", "dimensions": [3]}}]
            },
            "rows": [[{"indices": [[2]], "values": [5.0], "dimensions": [3]}]],
        }
    )
    np.testing.assert_array_equal(frame.column("v"), [[0.0, 0.0, 5.0]])


def test_sparse_rows_are_written_back_sparse_and_dense_rows_dense() -> None:
    tensor = {"type": "tensor", "base": "double", "dimensions": [3]}
    data: dict[str, Any] = {
        "schema": {"fields": [{"name": "v", "type": tensor}]},
        "rows": [
            [{"indices": [[0], [2]], "values": [1.0, 5.0], "dimensions": [3]}],
            [{"values": [1.0, 2.0, 3.0], "dimensions": [3]}],
        ],
    }
    frame = LeapFrame.from_mleap_json(data)
    assert frame.to_mleap_json() == data
    assert frame.take(np.array([False, True])).to_mleap_json()["rows"] == [data["rows"][1]]


def test_with_column_appends_and_select_reorders() -> None:
    frame = LeapFrame([Field("a", DataType.scalar("double"))], [np.array([1.0, 2.0])])
    out = frame.with_column(Field("b", DataType.scalar("double")), np.array([3.0, 4.0]))
    assert out.names == ["a", "b"]
    assert frame.names == ["a"]
    assert out.select(["b", "a"]).names == ["b", "a"]
    replaced = out.with_column(Field("a", DataType.scalar("double")), np.array([9.0, 9.0]))
    assert replaced.names == ["a", "b"]
    np.testing.assert_array_equal(replaced.column("a"), [9.0, 9.0])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"rows": []}, "schema"),
        (
            {"schema": {"fields": [{"name": "x", "type": "double"}]}, "rows": [[1.0, 2.0]]},
            "row 0 has 2 values",
        ),
        (
            {"schema": {"fields": [{"name": "x", "type": "double"}]}, "rows": [["a"]]},
            "column 'x': expected numbers",
        ),
        (
            {"schema": {"fields": [{"name": "x", "type": "decimal"}]}, "rows": []},
            "unknown base type 'decimal'",
        ),
        (
            {
                "schema": {
                    "fields": [{"name": "v", "type": {"type": "tensor", "base": "double", "dimensions": [2]}}]
                },
                "rows": [[{"values": [1.0], "dimensions": [1]}]],
            },
            "tensor has 1 values, expected 2",
        ),
        (
            {
                "schema": {"fields": [{"name": "x", "type": "double"}, {"name": "x", "type": "double"}]},
                "rows": [],
            },
            "appears twice",
        ),
    ],
)
def test_malformed_frames_name_what_is_wrong(frame: dict, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        LeapFrame.from_mleap_json(frame)


def test_missing_column_is_a_frame_error() -> None:
    frame = LeapFrame.from_mleap_json(FRAME)
    with pytest.raises(FrameError, match="no column 'zz'"):
        frame.column("zz")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 30])
def test_single_row_sparsity_matches_the_batch_rule(size: int) -> None:
    # Spark keeps a vector sparse when 1.5 * (non-zeros + 1) < size; one row takes its own path
    for nnz in range(size + 1):
        row = np.zeros((1, size))
        row[0, :nnz] = 1.0
        batch = np.vstack([row, np.ones((1, size))])
        assert bool(compressed_rows(row)[0]) == (1.5 * (nnz + 1) < size)
        assert bool(compressed_rows(row)[0]) == bool(compressed_rows(batch)[0])
