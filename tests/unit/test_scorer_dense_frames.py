"""The dense request form decodes to exactly what the columnar form does; malformed blocks are refused
with INVALID_ARGUMENT naming the problem, and the server keeps serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protos.rtscore.v1 import frame_pb2, scorer_pb2
from scorer.frame import DataType, Field, FrameError, LeapFrame
from scorer.service.dense_frames import DenseFrameDecoder, dense_frame, densify, has_dense
from scorer.service.frames import check_inputs, to_leap_frame
from tests.unit.test_scorer_grpc import Running, load, running, wire_frame

__all__ = ["running"]  # the server fixture, shared with the gRPC surface tests

DOUBLE = frame_pb2.COLUMN_TYPE_DOUBLE
NAMES = ("f0", "f1", "f2", "f3", "f4")
INPUTS = [Field(n, DataType.scalar("double", nullable=False)) for n in NAMES]
DOUBLES = st.floats(allow_nan=True, allow_infinity=True, width=64)


def columnar(names: tuple[str, ...], matrix: np.ndarray) -> frame_pb2.Frame:
    columns = [
        frame_pb2.Column(name=n, type=DOUBLE, doubles=matrix[:, i].tolist()) for i, n in enumerate(names)
    ]
    return frame_pb2.Frame(rows=matrix.shape[0], columns=columns)


def general(wire: frame_pb2.Frame) -> LeapFrame:
    return check_inputs(to_leap_frame(wire, {f.name: f for f in INPUTS}), INPUTS)


def assert_same(a: LeapFrame, b: LeapFrame) -> None:
    assert a.n_rows == b.n_rows
    assert {f.name: f for f in a.fields} == {f.name: f for f in b.fields}
    for name in b.names:
        assert a.column(name).dtype == b.column(name).dtype
        np.testing.assert_array_equal(a.column(name), b.column(name))  # NaN equals NaN here


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(NAMES),
    dense_count=st.integers(1, len(NAMES)),
    rows=st.integers(1, 40),
    data=st.data(),
)
def test_dense_decode_equals_columnar_decode(
    order: list[str], dense_count: int, rows: int, data: st.DataObject
) -> None:
    names = tuple(order)
    values = data.draw(st.lists(DOUBLES, min_size=rows * len(names), max_size=rows * len(names)))
    matrix = np.array(values, dtype=np.float64).reshape(rows, len(names))
    decoder = DenseFrameDecoder(INPUTS)
    expected = general(columnar(names, matrix))
    assert_same(decoder.decode(dense_frame(names, matrix)), expected)
    # part of the inputs dense, the rest as ordinary columns beside the block
    mixed = dense_frame(names[:dense_count], matrix[:, :dense_count])
    mixed.columns.extend(columnar(names[dense_count:], matrix[:, dense_count:]).columns)
    assert_same(decoder.decode(mixed), expected)
    assert_same(decoder.decode(dense_frame(names, matrix)), expected)  # again, from the remembered names


@settings(max_examples=30, deadline=None)
@given(order=st.permutations(NAMES), rows=st.integers(1, 20), data=st.data())
def test_densified_frames_decode_like_the_frames_they_came_from(
    order: list[str], rows: int, data: st.DataObject
) -> None:
    names = tuple(order)
    values = data.draw(st.lists(DOUBLES, min_size=rows * len(names), max_size=rows * len(names)))
    wire = columnar(names, np.array(values, dtype=np.float64).reshape(rows, len(names)))
    wire.columns.add(name="note", type=frame_pb2.COLUMN_TYPE_STRING, strings=["x"] * rows)
    wire.columns.add(name="spare", type=DOUBLE, doubles=[0.5] * rows)  # read by no model: stays a column
    dense = densify(wire, only=NAMES)
    assert list(dense.dense.names) == list(names)
    assert [c.name for c in dense.columns] == ["note", "spare"]
    assert_same(DenseFrameDecoder(INPUTS).decode(dense), general(wire))
    assert densify(dense) is dense


def _block(names: list[str], values: bytes, rows: int = 1) -> frame_pb2.Frame:
    return frame_pb2.Frame(rows=rows, dense=frame_pb2.DenseDoubles(names=names, values=values))


ONE_ROW = np.arange(5, dtype="<f8").tobytes()


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (_block(list(NAMES), ONE_ROW[:-8]), "1 rows of 5 columns need 40 bytes of float64, got 32"),
        (_block(list(NAMES), ONE_ROW + b"\0"), "got 41"),
        (_block(list(NAMES), ONE_ROW, rows=2), "2 rows of 5 columns need 80 bytes"),
        (_block(list(NAMES), ONE_ROW, rows=0), "needs rows >= 1, got 0"),
        (_block(list(NAMES), ONE_ROW, rows=-3), "needs rows >= 1, got -3"),
        (_block(["f0", "f1", "f1", "f3", "f4"], ONE_ROW), "column 'f1' appears twice"),
        (_block(["f0", "f1", "", "f3", "f4"], ONE_ROW), "column 2 has no name"),
        (_block(["f0", "f1", "f2", "f3", "nope"], ONE_ROW), "the model reads no column 'nope'"),
        (_block([], ONE_ROW), "dense block has no names"),
        (_block(["f0", "f1", "f2", "f3"], ONE_ROW[:32]), "missing column 'f4'"),
    ],
)
def test_malformed_dense_blocks_are_refused_naming_the_problem(wire: frame_pb2.Frame, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        DenseFrameDecoder(INPUTS).decode(wire)


def test_a_name_in_both_the_block_and_the_columns_is_refused() -> None:
    wire = dense_frame(NAMES, np.ones((2, 5)))
    wire.columns.add(name="f3", type=DOUBLE, doubles=[1.0, 2.0])
    with pytest.raises(FrameError, match="'f3' appears both in the dense block and as a column"):
        DenseFrameDecoder(INPUTS).decode(wire)


def test_an_empty_block_is_no_block() -> None:
    wire = wire_frame(a=[1.0])
    wire.dense.SetInParent()
    assert wire.HasField("dense")
    assert not has_dense(wire)
    assert has_dense(dense_frame(["a"], np.ones((1, 1))))


async def test_dense_calls_score_like_columnar_ones_and_bad_blocks_leave_the_server_serving(
    running: Running,
) -> None:
    await load(running, "fraud", "/sum1", "v1")
    matrix = np.array([[1.0, 3.0], [2.5, np.nan], [-np.inf, 4.0]])
    dense = await running.scorer.Score(
        scorer_pb2.ScoreRequest(model="fraud", frame=dense_frame(["a", "b"], matrix))
    )
    plain = await running.scorer.Score(
        scorer_pb2.ScoreRequest(
            model="fraud", frame=wire_frame(a=matrix[:, 0].tolist(), b=matrix[:, 1].tolist())
        )
    )
    assert dense == plain
    np.testing.assert_array_equal(list(dense.frame.columns[0].doubles), [5.0, np.nan, -np.inf])
    swapped = await running.scorer.Score(
        scorer_pb2.ScoreRequest(
            model="fraud", frame=dense_frame(["b", "a"], matrix[:, ::-1]), include_inputs=True
        )
    )
    assert [c.name for c in swapped.frame.columns] == ["b", "a", "sum"]
    bad = [
        _block(["a", "b"], b"\0" * 15),
        _block(["a", "a"], b"\0" * 16),
        _block(["a", "zz"], b"\0" * 16),
        _block(["a", "b"], b"", rows=0),
    ]
    for wire in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.scorer.Score(scorer_pb2.ScoreRequest(model="fraud", frame=wire))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "dense block" in (err.value.details() or "")
    after = await running.scorer.Score(
        scorer_pb2.ScoreRequest(model="fraud", frame=dense_frame(["a", "b"], matrix))
    )
    assert after == plain
