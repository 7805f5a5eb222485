"""Wire `Frame` ⇄ `LeapFrame` conversion and the input check, with the column named in every error."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from protos.rtscore.v1 import frame_pb2
from scorer.frame import DataType, Field, FrameError, LeapFrame
from scorer.service.frames import check_inputs, to_leap_frame, to_wire_frame

CT = frame_pb2.ColumnType
UNKNOWN_TYPE = cast(frame_pb2.ColumnType, 99)  # a value no rtscore version defines


def test_every_column_type_round_trips_through_the_wire() -> None:
    wire = frame_pb2.Frame(
        rows=2,
        columns=[
            frame_pb2.Column(name="amount", type=CT.COLUMN_TYPE_DOUBLE, doubles=[1.5, -2.0]),
            frame_pb2.Column(name="count", type=CT.COLUMN_TYPE_INT64, int64s=[3, 9_000_000_000]),
            frame_pb2.Column(name="country", type=CT.COLUMN_TYPE_STRING, strings=["NL", "FR"]),
            frame_pb2.Column(name="card_present", type=CT.COLUMN_TYPE_BOOL, bools=[True, False]),
            frame_pb2.Column(
                name="v", type=CT.COLUMN_TYPE_DOUBLE_TENSOR, shape=[3], doubles=[1, 2, 3, 4, 5, 6]
            ),
        ],
    )
    leap = to_leap_frame(wire, {})
    assert leap.n_rows == 2
    assert [f.dtype.base for f in leap.fields] == ["double", "long", "string", "boolean", "double"]
    assert leap.column("v").tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert to_wire_frame(leap) == wire


def test_declared_input_type_is_kept_for_a_column_of_matching_kind() -> None:
    wire = frame_pb2.Frame(
        rows=1, columns=[frame_pb2.Column(name="n", type=CT.COLUMN_TYPE_INT64, int64s=[7])]
    )
    leap = to_leap_frame(wire, {"n": Field("n", DataType.scalar("int", nullable=False))})
    assert leap.field("n").dtype == DataType.scalar("int", nullable=False)


@pytest.mark.parametrize(
    ("column", "rows", "message"),
    [
        (
            frame_pb2.Column(name="a", type=CT.COLUMN_TYPE_DOUBLE, doubles=[1.0]),
            2,
            "column 'a': has 1 values for 2",
        ),
        (
            frame_pb2.Column(name="a", type=CT.COLUMN_TYPE_DOUBLE, strings=["x"]),
            1,
            "column 'a': carries values",
        ),
        (
            frame_pb2.Column(name="a", type=UNKNOWN_TYPE, doubles=[1.0]),
            1,
            "column 'a': unknown column type 99",
        ),
        (frame_pb2.Column(name="a", type=CT.COLUMN_TYPE_UNSPECIFIED), 1, "column 'a': unknown column type 0"),
        (
            frame_pb2.Column(name="t", type=CT.COLUMN_TYPE_DOUBLE_TENSOR, shape=[3], doubles=[1, 2]),
            1,
            "column 't': tensor of shape [3] needs 3 values for 1 rows, got 2",
        ),
        (
            frame_pb2.Column(name="t", type=CT.COLUMN_TYPE_DOUBLE_TENSOR, shape=[2, 2], doubles=[1, 2, 3, 4]),
            1,
            "column 't': tensor shape must be one dimension",
        ),
        (frame_pb2.Column(name="", type=CT.COLUMN_TYPE_DOUBLE, doubles=[1.0]), 1, "column 0 has no name"),
    ],
)
def test_malformed_wire_columns_are_refused_naming_the_column(
    column: frame_pb2.Column, rows: int, message: str
) -> None:
    with pytest.raises(FrameError) as err:
        to_leap_frame(frame_pb2.Frame(rows=rows, columns=[column]), {})
    assert message in str(err.value)


def test_negative_row_count_is_refused() -> None:
    with pytest.raises(FrameError, match="rows must be non-negative"):
        to_leap_frame(frame_pb2.Frame(rows=-1), {})


def test_duplicate_column_is_refused() -> None:
    col = frame_pb2.Column(name="a", type=CT.COLUMN_TYPE_DOUBLE, doubles=[1.0])
    with pytest.raises(FrameError, match="'a' appears twice"):
        to_leap_frame(frame_pb2.Frame(rows=1, columns=[col, col]), {})


def _frame(**cols: np.ndarray) -> LeapFrame:
    fields = []
    for name, array in cols.items():
        if array.ndim == 2:
            fields.append(Field(name, DataType.tensor("double", (array.shape[1],))))
        else:
            base = {"f": "double", "i": "long", "O": "string", "b": "boolean"}[array.dtype.kind]
            fields.append(Field(name, DataType.scalar(base)))
    return LeapFrame(fields, list(cols.values()))


def test_input_check_widens_integers_where_doubles_are_read() -> None:
    inputs = [Field("a", DataType.scalar("double"))]
    checked = check_inputs(_frame(a=np.array([1, 2])), inputs)
    assert checked.column("a").dtype == np.float64
    assert checked.column("a").tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame(b=np.array([1.0])), "missing column 'a'"),
        (
            _frame(a=np.array(["x"], dtype=object)),
            "column 'a': the model reads scalar double, the frame has scalar",
        ),
        (
            _frame(a=np.array([1.0]), v=np.zeros((1, 2))),
            "column 'v': model reads a tensor of size [3], got [2]",
        ),
    ],
)
def test_input_check_names_the_column_that_does_not_fit(frame: LeapFrame, message: str) -> None:
    inputs = [Field("a", DataType.scalar("double")), Field("v", DataType.tensor("double", (3,)))]
    with pytest.raises(FrameError) as err:
        check_inputs(frame, inputs)
    assert message in str(err.value)
