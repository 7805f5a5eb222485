"""The all-double fast path decodes exactly what the general path does, and declines everything else."""

from __future__ import annotations

import numpy as np
import pytest

from protos.rtscore.v1 import frame_pb2
from scorer.frame import DataType, Field, LeapFrame
from scorer.service.double_frames import DoubleFrameDecoder, encode_doubles
from scorer.service.frames import check_inputs, to_leap_frame, to_wire_frame

DOUBLE = frame_pb2.COLUMN_TYPE_DOUBLE
INPUTS = [Field(f"f{i}", DataType.scalar("double", nullable=False)) for i in range(4)]


def frame(rows: int = 2, names: tuple[str, ...] = ("f0", "f1", "f2", "f3")) -> frame_pb2.Frame:
    rng = np.random.default_rng(rows)
    columns = [frame_pb2.Column(name=n, type=DOUBLE, doubles=rng.normal(size=rows).tolist()) for n in names]
    return frame_pb2.Frame(rows=rows, columns=columns)


@pytest.mark.parametrize("rows", [1, 3, 200])
def test_fast_path_matches_the_general_path(rows: int) -> None:
    wire = frame(rows, ("f3", "extra", "f0", "f1", "f2"))
    fast = DoubleFrameDecoder(INPUTS).decode(wire)
    general = check_inputs(to_leap_frame(wire, {f.name: f for f in INPUTS}), INPUTS)
    assert fast is not None
    assert fast.fields == general.fields
    assert all(np.array_equal(fast.column(n), general.column(n)) for n in general.names)


def _stray_value(w: frame_pb2.Frame) -> None:
    w.columns[1].bools.append(True)


def _other_type(w: frame_pb2.Frame) -> None:
    w.columns[1].type = frame_pb2.COLUMN_TYPE_BOOL


def _shape(w: frame_pb2.Frame) -> None:
    w.columns[1].shape.append(1)


def _uneven(w: frame_pb2.Frame) -> None:
    w.columns[0].doubles.append(1.0)
    del w.columns[1].doubles[0]


def _missing_input(w: frame_pb2.Frame) -> None:
    del w.columns[2]


def _unnamed(w: frame_pb2.Frame) -> None:
    w.columns[3].name = ""


@pytest.mark.parametrize("spoil", [_stray_value, _other_type, _shape, _uneven, _missing_input, _unnamed])
def test_anything_but_a_fitting_all_double_frame_goes_to_the_general_path(spoil: object) -> None:
    decoder = DoubleFrameDecoder(INPUTS)
    wire = frame()
    assert decoder.decode(wire) is not None
    assert callable(spoil)
    spoil(wire)
    assert decoder.decode(wire) is None


def test_empty_and_zero_row_frames_go_to_the_general_path() -> None:
    decoder = DoubleFrameDecoder(INPUTS)
    assert decoder.decode(frame_pb2.Frame(rows=1)) is None
    assert decoder.decode(frame(0)) is None


@pytest.mark.parametrize("rows", [0, 1, 5, 100])
def test_double_encoding_is_byte_identical_to_the_general_encoder(rows: int) -> None:
    rng = np.random.default_rng(rows)
    fields = [
        Field("p", DataType.scalar("double", nullable=False)),
        Field("probability", DataType.tensor("double", (2,))),
        Field("f", DataType.scalar("float")),
    ]
    arrays = [rng.normal(size=rows), rng.normal(size=(rows, 2)), rng.normal(size=rows)]
    out = LeapFrame(fields, arrays, rows)
    names = ["probability", "p", "f"]
    encoded = encode_doubles(out, names)
    assert encoded == to_wire_frame(out, names).SerializeToString()


def test_double_encoding_declines_other_column_types() -> None:
    out = LeapFrame([Field("n", DataType.scalar("long"))], [np.array([1, 2])], 2)
    assert encode_doubles(out, ["n"]) is None


def _general(wire: frame_pb2.Frame) -> LeapFrame:
    return check_inputs(to_leap_frame(wire, {f.name: f for f in INPUTS}), INPUTS)


def _same(a: LeapFrame | None, b: LeapFrame) -> bool:
    return (
        a is not None
        and a.fields == b.fields
        and all(np.array_equal(a.column(n), b.column(n)) for n in b.names)
    )


@pytest.mark.parametrize("rows", [1, 7, 64])
def test_later_frames_of_a_schema_decode_from_its_layout_with_their_own_values(rows: int) -> None:
    decoder = DoubleFrameDecoder(INPUTS)
    rng = np.random.default_rng(rows)
    for _ in range(4):
        wire = frame(rows)
        for column in wire.columns:
            column.doubles[:] = rng.normal(size=rows).tolist()
        assert _same(decoder.decode(wire), _general(wire))
    assert decoder._n_layouts == 1


def test_schemas_of_equal_size_each_get_their_own_layout() -> None:
    decoder = DoubleFrameDecoder(INPUTS)
    ordered, swapped = frame(2), frame(2, ("f1", "f0", "f2", "f3"))
    assert ordered.ByteSize() == swapped.ByteSize()
    for wire in (ordered, swapped, ordered, swapped):
        assert _same(decoder.decode(wire), _general(wire))
    assert decoder._n_layouts == 2


def test_a_frame_with_unpacked_doubles_decodes_like_its_packed_twin() -> None:
    packed = frame(3)
    unpacked = bytearray(frame_pb2.Frame(rows=3).SerializeToString())
    for column in packed.columns:
        body = bytearray(frame_pb2.Column(name=column.name, type=column.type).SerializeToString())
        for value in column.doubles:  # field 4 as wire type 1 (fixed64), one value at a time
            body += bytes([4 << 3 | 1]) + np.float64(value).tobytes()
        unpacked += bytes([2 << 3 | 2, len(body)]) + body
    decoder = DoubleFrameDecoder(INPUTS)
    assert _same(decoder.decode(packed), _general(packed))
    assert _same(decoder.decode(frame_pb2.Frame.FromString(bytes(unpacked))), _general(packed))
