"""ModelWatch: a refused frame is FAILED_PRECONDITION, checked again at most once per interval, and a
known misfit is checked on a timer until it fits, health following each change once."""

from __future__ import annotations

import asyncio

import grpc

from extractor.model_watch import ModelWatch
from protos.rtscore.v1 import frame_pb2
from scorer.client.errors import ScorerCallError

FEATURES = ("a", "b")
FITS = [frame_pb2.FieldSpec(name=n, type=frame_pb2.COLUMN_TYPE_DOUBLE) for n in FEATURES]
OTHER = [frame_pb2.FieldSpec(name="a", type=frame_pb2.COLUMN_TYPE_DOUBLE),
         frame_pb2.FieldSpec(name="c", type=frame_pb2.COLUMN_TYPE_STRING)]  # fmt: skip
REFUSAL = ScorerCallError("127.0.0.1:1", grpc.StatusCode.INVALID_ARGUMENT, "no column 'c'")


class Model:
    """The inputs a scorer describes, the times it was asked and the health changes it caused."""

    def __init__(self, inputs: list[frame_pb2.FieldSpec]) -> None:
        self.inputs = inputs
        self.asked = 0
        self.fits: list[bool] = []

    async def describe(self) -> list[frame_pb2.FieldSpec]:
        self.asked += 1
        return self.inputs

    async def on_fit(self, fits: bool) -> None:
        self.fits.append(fits)


async def test_refusals_ask_once_per_interval_and_then_name_the_misfit() -> None:
    model = Model(OTHER)
    watch = ModelWatch(FEATURES, "fraud", model.describe, model.on_fit, interval_s=60.0)
    first = watch.refused(REFUSAL)
    assert first.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "no column 'c'" in str(first)
    assert "checked again" in str(first)
    await asyncio.sleep(0.01)
    for _ in range(5):
        later = watch.refused(REFUSAL)
    assert model.asked == 1
    assert "missing: the model reads 'c'" in str(later)
    assert "mistyped" not in str(later)
    assert "unused: the spec produces 'b'" in str(later)
    assert model.fits == [False]
    await watch.close()


async def test_a_known_misfit_is_checked_on_a_timer_until_it_fits() -> None:
    model = Model(OTHER)
    watch = ModelWatch(FEATURES, "fraud", model.describe, model.on_fit, interval_s=0.02)
    watch.refused(REFUSAL)
    await asyncio.sleep(0.1)
    assert model.asked >= 3  # no call came: the timer asked
    assert model.fits == [False]
    model.inputs = FITS
    await asyncio.sleep(0.1)
    assert watch.problem is None
    assert model.fits == [False, True]
    asked = model.asked
    await asyncio.sleep(0.1)
    assert model.asked == asked  # fitting again, nothing is asked until the next refusal
    await watch.close()


async def test_a_refusal_while_the_model_fits_changes_nothing() -> None:
    model = Model(FITS)
    watch = ModelWatch(FEATURES, "fraud", model.describe, model.on_fit, interval_s=0.02)
    watch.refused(REFUSAL)
    await asyncio.sleep(0.1)
    assert watch.problem is None
    assert model.asked == 1
    assert model.fits == []
    await watch.close()
