"""LeapFrame files and model schemas become the score requests the load generator sends."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.frames import (
    BenchFrameError,
    load_leap_frame,
    requests_from_schema,
    score_requests,
    to_frame,
)
from protos.rtscore.v1 import frame_pb2, scorer_pb2
from tests.paths import FIXTURES

MIXED = {
    "schema": {
        "fields": [
            {"name": "amount", "type": "double"},
            {"name": "count", "type": "integer"},
            {"name": "country", "type": "string"},
            {"name": "flag", "type": "boolean"},
            {"name": "vec", "type": {"type": "tensor", "base": "double", "dimensions": [2]}},
        ]
    },
    "rows": [
        [1.5, 3, "NL", True, {"values": [0.5, 1.0], "dimensions": [2]}],
        [None, 4, "DE", False, {"values": [2.0, 3.0], "dimensions": [2]}],
    ],
}


def test_leap_frame_rows_become_typed_columns() -> None:
    frame = to_frame(MIXED)
    columns = {c.name: c for c in frame.columns}
    assert frame.rows == 2
    assert columns["amount"].type == frame_pb2.COLUMN_TYPE_DOUBLE
    assert columns["amount"].doubles[0] == 1.5
    assert math.isnan(columns["amount"].doubles[1])
    assert list(columns["count"].int64s) == [3, 4]
    assert list(columns["country"].strings) == ["NL", "DE"]
    assert list(columns["flag"].bools) == [True, False]
    assert list(columns["vec"].shape) == [2]
    assert list(columns["vec"].doubles) == [0.5, 1.0, 2.0, 3.0]


def test_batches_cycle_through_the_rows() -> None:
    requests = [scorer_pb2.ScoreRequest.FromString(r) for r in score_requests(MIXED, "fraud", 3)]
    assert len(requests) == 2
    assert all(r.model == "fraud" and r.frame.rows == 3 for r in requests)
    countries = [list(r.frame.columns[2].strings) for r in requests]
    assert countries == [["NL", "DE", "NL"], ["DE", "NL", "DE"]]


def test_shared_fixture_frame_converts() -> None:
    path = FIXTURES / "frame.airbnb.json"
    if not path.exists():
        pytest.skip(f"shared fixtures not present at {path}")
    frame = to_frame(load_leap_frame(path))
    assert frame.rows == 1
    assert [c.name for c in frame.columns][:2] == ["state", "bathrooms"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[1.5, 3, "NL", True]], "row 0 has 4 values"),
        ([["x", 3, "NL", True, [1.0, 2.0]]], "column 'amount': expected a number"),
        ([[1.0, 3.5, "NL", True, [1.0, 2.0]]], "column 'count': expected an integer"),
        ([[1.0, 3, "NL", True, [1.0]]], "column 'vec': expected a tensor of 2 values"),
    ],
)
def test_bad_rows_are_rejected_naming_the_row_and_column(rows: list[list[object]], message: str) -> None:
    with pytest.raises(BenchFrameError, match=message):
        to_frame({**MIXED, "rows": rows})


def test_unsupported_field_types_are_named() -> None:
    frame = {
        "schema": {"fields": [{"name": "tags", "type": {"type": "list", "base": "string"}}]},
        "rows": [[]],
    }
    with pytest.raises(BenchFrameError, match=r"'tags'.*unsupported field type"):
        to_frame(frame)


def test_frame_file_that_is_not_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "frame.json"
    path.write_text("{nope")
    with pytest.raises(BenchFrameError, match="not JSON"):
        load_leap_frame(path)
    path.write_text(json.dumps({"rows": [[1]]}))
    with pytest.raises(BenchFrameError, match="'schema'"):
        load_leap_frame(path)


def test_schema_generated_requests_match_the_declared_inputs() -> None:
    fields = [
        frame_pb2.FieldSpec(name="a", type=frame_pb2.COLUMN_TYPE_DOUBLE),
        frame_pb2.FieldSpec(name="v", type=frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR, shape=[3]),
        frame_pb2.FieldSpec(name="s", type=frame_pb2.COLUMN_TYPE_STRING),
    ]
    requests = [
        scorer_pb2.ScoreRequest.FromString(r) for r in requests_from_schema(fields, "m", 4, distinct=5)
    ]
    assert len(requests) == 5
    frame = requests[0].frame
    assert frame.rows == 4
    assert [len(frame.columns[0].doubles), len(frame.columns[1].doubles), len(frame.columns[2].strings)] == [
        4,
        12,
        4,
    ]
    with pytest.raises(BenchFrameError, match="declares no input"):
        requests_from_schema([], "m", 1)


def test_schema_generated_requests_of_double_scalars_can_travel_dense() -> None:
    import numpy as np

    from benchmarks.frames import all_double_scalars

    doubles = [frame_pb2.FieldSpec(name=n, type=frame_pb2.COLUMN_TYPE_DOUBLE) for n in ("a", "b", "c")]
    assert all_double_scalars(doubles)
    requests = [
        scorer_pb2.ScoreRequest.FromString(r)
        for r in requests_from_schema(doubles, "m", 4, distinct=5, dense=True)
    ]
    assert len(requests) == 5
    frame = requests[0].frame
    assert (frame.rows, list(frame.dense.names), len(frame.columns)) == (4, ["a", "b", "c"], 0)
    assert np.isfinite(np.frombuffer(frame.dense.values, dtype="<f8")).sum() == 12
    tensor = [*doubles, frame_pb2.FieldSpec(name="v", type=frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR, shape=[3])]
    assert not all_double_scalars(tensor)
    assert not all_double_scalars([])
    with pytest.raises(BenchFrameError, match="double scalar inputs only"):
        requests_from_schema(tensor, "m", 1, dense=True)


DOUBLES = {
    "schema": {"fields": [{"name": "amount", "type": "double"}, {"name": "age", "type": "double"}]},
    "rows": [[1.5, 30.0], [None, 41.0], [2.5, -1.0]],
}


def test_all_double_rows_travel_as_one_dense_block() -> None:
    import numpy as np

    from benchmarks.frames import all_doubles

    assert all_doubles(DOUBLES)
    assert not all_doubles(MIXED)
    serialized = score_requests(DOUBLES, "fraud", 2, dense=True)
    requests = [scorer_pb2.ScoreRequest.FromString(r) for r in serialized]
    assert len(requests) == 3
    first = requests[1].frame
    assert (first.rows, list(first.dense.names), len(first.columns)) == (2, ["amount", "age"], 0)
    values = np.frombuffer(first.dense.values, dtype="<f8").reshape(2, 2)
    assert math.isnan(values[0, 0])
    assert values[0, 1] == 41.0
    assert list(values[1]) == [2.5, -1.0]
    with pytest.raises(BenchFrameError, match="double fields only"):
        score_requests(MIXED, "fraud", 1, dense=True)
