"""Hosting logic of the scorer core, with a small fake model: swaps, leases, admission, canaries, drain."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from rtscore.errors import InvalidArgument
from scorer.frame import DataType, Field, LeapFrame
from scorer.service.canary import Canary
from scorer.service.core import ScorerCore
from scorer.service.desired import reconcile
from scorer.service.errors import CanaryFailed, Draining, ModelNotFound, OverloadError
from scorer.service.model import HostedModel, ModelSpec

DOUBLE = DataType.scalar("double")


class SumModel:
    """A fake bundle: `sum = a + b + offset`; can be told to block, fail or dawdle."""

    def __init__(self, offset: float = 0.0, name: str = "sum") -> None:
        self.name = name
        self.format = "json"
        self.mleap_version = "0.25.3"
        self.sha256 = f"{int(offset * 1000):064x}"
        self.root_op = "pipeline"
        self.input_schema = [Field("a", DOUBLE), Field("b", DOUBLE)]
        self.output_schema = [Field("sum", DOUBLE)]
        self.offset = offset
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.broken = False
        self.delay_s = 0.0
        self.delayed_calls: int | None = None  # how many more calls take `delay_s`; None: every one
        self.calls = 0

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Score the frame."""
        self.entered.release()
        self.gate.wait(10)
        self.calls += 1
        if self.delay_s and self.delayed_calls != 0:
            self.delayed_calls = None if self.delayed_calls is None else self.delayed_calls - 1
            time.sleep(self.delay_s)
        if self.broken:
            raise RuntimeError("kernel exploded")
        total = frame.column("a") + frame.column("b") + self.offset
        return frame.with_column(Field("sum", DOUBLE), total)


def frame_of(**cols: list[float]) -> LeapFrame:
    """A double frame from keyword columns."""
    names = list(cols)
    arrays = [np.asarray(cols[n], dtype=np.float64) for n in names]
    return LeapFrame([Field(n, DOUBLE) for n in names], arrays)


def canary_for(offset: float) -> Canary:
    """A canary that passes only for a SumModel with this offset."""
    return Canary(frame_of(a=[1.0, 2.0], b=[3.0, 4.0]), frame_of(sum=[4.0 + offset, 6.0 + offset]))


class Loader:
    """Maps bundle paths to fake models."""

    def __init__(self) -> None:
        self.models: dict[str, SumModel] = {}

    def __call__(self, path: str) -> SumModel:
        if path not in self.models:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.models[path]


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(4)
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


def make_core(pool: ThreadPoolExecutor, loader: Loader, limit: int = 64) -> ScorerCore:
    return ScorerCore(loader, pool, max_in_flight=limit, canary_budget_s=0.05)


async def serving(pool: ThreadPoolExecutor, model: SumModel, limit: int = 64) -> ScorerCore:
    """A core hosting `model` as fraud@v1."""
    loader = Loader()
    loader.models["/m"] = model
    core = make_core(pool, loader, limit)
    await core.load("fraud", "v1", "/m")
    return core


async def with_canary(pool: ThreadPoolExecutor) -> tuple[ScorerCore, SumModel, HostedModel]:
    """A core hosting a SumModel as fraud@v1 with a canary it passes."""
    loader = Loader()
    model = SumModel(1.0)
    loader.models["/m"] = model
    core = make_core(pool, loader)
    return core, model, await core.load("fraud", "v1", "/m", canary_for(1.0))


async def held_call(core: ScorerCore, model: SumModel) -> asyncio.Task[Any]:
    """A call that stays in flight until `model.gate` is set."""
    model.gate.clear()
    call = asyncio.create_task(core.score("fraud", frame_of(a=[1.0], b=[1.0])))
    await wait_for(lambda: core.gate.in_flight >= 1)
    return call


async def wait_for(predicate: Any, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_score_addresses_model_by_name_and_exact_version(pool: ThreadPoolExecutor) -> None:
    loader = Loader()
    loader.models["/m1"] = SumModel(1.0)
    core = make_core(pool, loader)
    hosted = await core.load("fraud", "v1", "/m1")
    out, used = await core.score("fraud", frame_of(a=[1.0], b=[2.0]))
    assert used is hosted
    assert out.column("sum").tolist() == [4.0]
    out, _ = await core.score("fraud@v1", frame_of(a=[0.5], b=[0.25]))
    assert out.column("sum").tolist() == [1.75]


async def test_unknown_model_or_version_is_not_found_naming_what_is_hosted(pool: ThreadPoolExecutor) -> None:
    loader = Loader()
    loader.models["/m1"] = SumModel()
    core = make_core(pool, loader)
    await core.load("fraud", "v1", "/m1")
    with pytest.raises(ModelNotFound, match=r"'churn' is not hosted here \(hosted: fraud\)"):
        await core.score("churn", frame_of(a=[1.0], b=[1.0]))
    with pytest.raises(ModelNotFound, match="version 'v1', not 'v9'"):
        await core.score("fraud@v9", frame_of(a=[1.0], b=[1.0]))


async def test_missing_input_column_is_named(pool: ThreadPoolExecutor) -> None:
    loader = Loader()
    loader.models["/m1"] = SumModel()
    core = make_core(pool, loader)
    await core.load("fraud", "v1", "/m1")
    with pytest.raises(InvalidArgument, match="missing column 'b'"):
        await core.score("fraud", frame_of(a=[1.0]))


async def test_version_defaults_to_bundle_digest_prefix(pool: ThreadPoolExecutor) -> None:
    loader = Loader()
    loader.models["/m1"] = SumModel(2.0)
    hosted = await make_core(pool, loader).load("fraud", "", "/m1")
    assert hosted.version == loader.models["/m1"].sha256[:12]


async def test_swap_routes_new_calls_to_new_version_and_waits_for_old_calls(pool: ThreadPoolExecutor) -> None:
    loader = Loader()
    v1, v2 = SumModel(1.0), SumModel(2.0)
    loader.models.update({"/v1": v1, "/v2": v2})
    core = make_core(pool, loader)
    await core.load("fraud", "v1", "/v1")
    v1.gate.clear()
    slow = asyncio.create_task(core.score("fraud", frame_of(a=[0.0], b=[0.0])))
    await asyncio.to_thread(v1.entered.acquire, True, 5)
    swap = asyncio.create_task(core.load("fraud", "v2", "/v2"))
    await wait_for(lambda: core.table.resolve("fraud").version == "v2")
    out, used = await core.score("fraud", frame_of(a=[0.0], b=[0.0]))
    assert (used.version, out.column("sum").tolist()) == ("v2", [2.0])
    await asyncio.sleep(0.05)
    assert not swap.done(), "the swap returned while v1 still had a call in flight"
    v1.gate.set()
    out, used = await slow
    assert (used.version, out.column("sum").tolist()) == ("v1", [1.0])
    assert (await swap).version == "v2"


async def test_calls_past_the_in_flight_bound_are_refused_at_once(pool: ThreadPoolExecutor) -> None:
    model = SumModel()
    core = await serving(pool, model, limit=2)
    held = [await held_call(core, model) for _ in range(2)]
    await wait_for(lambda: core.gate.in_flight == 2)
    started = time.perf_counter()
    with pytest.raises(OverloadError, match="bound of 2 in-flight calls"):
        await core.score("fraud", frame_of(a=[1.0], b=[1.0]))
    assert time.perf_counter() - started < 0.05
    model.gate.set()
    assert [(await t)[0].column("sum").tolist() for t in held] == [[2.0], [2.0]]


async def test_load_refuses_a_version_whose_canary_is_wrong_and_keeps_the_old_one(
    pool: ThreadPoolExecutor,
) -> None:
    loader = Loader()
    loader.models.update({"/good": SumModel(1.0), "/bad": SumModel(5.0)})
    core = make_core(pool, loader)
    await core.load("fraud", "v1", "/good", canary_for(1.0))
    with pytest.raises(CanaryFailed, match=r"column 'sum' row 0: expected 5\.0, got 9\.0"):
        await core.load("fraud", "v2", "/bad", canary_for(1.0))
    assert core.table.resolve("fraud").version == "v1"


async def test_canary_failure_turns_model_not_serving_and_it_recovers(pool: ThreadPoolExecutor) -> None:
    core, model, hosted = await with_canary(pool)
    model.broken = True
    await core.check_canaries()
    assert not hosted.serving
    assert "RuntimeError: kernel exploded" in hosted.health_reason
    model.broken, model.offset = False, 3.0
    await core.check_canaries()
    assert (hosted.serving, "expected 5.0, got 7.0" in hosted.health_reason) == (False, True)
    model.offset = 1.0
    await core.check_canaries()
    assert (hosted.serving, hosted.health_reason) == (True, "")


async def test_canary_over_its_latency_budget_turns_model_not_serving(pool: ThreadPoolExecutor) -> None:
    core, model, hosted = await with_canary(pool)
    model.delay_s = 0.08
    await core.check_canaries()
    assert not hosted.serving
    assert "over its 50.0 ms budget" in hosted.health_reason
    model.delay_s = 0.0
    await core.check_canaries()
    assert (hosted.serving, hosted.health_reason) == (True, "")


async def test_one_late_canary_is_run_again_and_the_model_keeps_serving(pool: ThreadPoolExecutor) -> None:
    core, model, hosted = await with_canary(pool)
    model.delay_s, model.delayed_calls, before = 0.08, 1, model.calls
    await core.check_canaries()
    assert (hosted.serving, model.calls - before, model.delayed_calls) == (True, 2, 0)


async def test_a_wrong_canary_is_not_run_again(pool: ThreadPoolExecutor) -> None:
    core, model, hosted = await with_canary(pool)
    model.offset, before = 3.0, model.calls
    await core.check_canaries()
    assert (hosted.serving, model.calls - before) == (False, 1)


async def test_unreadable_bundle_is_invalid_argument_and_others_keep_serving(
    pool: ThreadPoolExecutor,
) -> None:
    core = await serving(pool, SumModel())
    with pytest.raises(InvalidArgument, match="cannot read bundle /nope"):
        await core.load("churn", "v1", "/nope")
    out, _ = await core.score("fraud", frame_of(a=[1.0], b=[2.0]))
    assert out.column("sum").tolist() == [3.0]


async def test_unload_waits_for_in_flight_calls_then_forgets_the_model(pool: ThreadPoolExecutor) -> None:
    model = SumModel()
    core = await serving(pool, model)
    call = await held_call(core, model)
    unload = asyncio.create_task(core.unload("fraud"))
    await asyncio.sleep(0.05)
    assert not unload.done()
    with pytest.raises(ModelNotFound):
        core.table.resolve("fraud")
    model.gate.set()
    assert (await call)[0].column("sum").tolist() == [2.0]
    assert (await unload).ref == "fraud@v1"


async def test_drain_refuses_new_calls_and_waits_for_running_ones(pool: ThreadPoolExecutor) -> None:
    model = SumModel()
    core = await serving(pool, model)
    call = await held_call(core, model)
    drain = asyncio.create_task(core.drain())
    await asyncio.sleep(0.02)
    with pytest.raises(Draining):
        await core.score("fraud", frame_of(a=[1.0], b=[1.0]))
    assert not drain.done()
    model.gate.set()
    await call
    await drain


async def test_reconcile_loads_swaps_and_unloads_to_match_desired_state(pool: ThreadPoolExecutor) -> None:
    loader = Loader()
    loader.models.update({"/a1": SumModel(1.0), "/a2": SumModel(2.0), "/b": SumModel(0.0)})
    core = make_core(pool, loader)
    first = await reconcile(core, [ModelSpec("a", "/a1", "v1"), ModelSpec("b", "/b", "v1")])
    assert (first.loaded, first.unloaded, first.failed) == (["a@v1", "b@v1"], [], {})
    again = await reconcile(core, [ModelSpec("a", "/a1", "v1"), ModelSpec("b", "/b", "v1")])
    assert (again.loaded, again.unloaded) == ([], []), "an unchanged desired state must not reload"
    moved = await reconcile(core, [ModelSpec("a", "/a2", "v2"), ModelSpec("c", "/missing", "v1")])
    assert (moved.loaded, moved.unloaded) == (["a@v2"], ["b@v1"])
    assert moved.replaced == ["a@v1"]
    assert "cannot read bundle /missing" in moved.failed["c@v1"]
    assert [h.ref for h in core.table.models()] == ["a@v2"]


async def test_abandoned_call_keeps_its_slot_until_the_transform_ends(pool: ThreadPoolExecutor) -> None:
    model = SumModel()
    core = await serving(pool, model, limit=1)
    call = await held_call(core, model)
    await asyncio.to_thread(model.entered.acquire, True, 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    with pytest.raises(OverloadError):  # the thread is still scoring: its slot is not free yet
        await core.score("fraud", frame_of(a=[1.0], b=[1.0]))
    assert core.table.resolve("fraud").in_flight == 1
    model.gate.set()
    await wait_for(lambda: core.gate.in_flight == 0)
    out, _ = await core.score("fraud", frame_of(a=[1.0], b=[1.0]))
    assert out.column("sum").tolist() == [2.0]


class ThreadRecordingModel(SumModel):
    """A SumModel that remembers which thread ran each transform."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Score the frame, noting the thread."""
        self.threads.append(threading.get_ident())
        return super().transform(frame)


async def recording_core(pool: ThreadPoolExecutor, **inline: Any) -> tuple[ScorerCore, ThreadRecordingModel]:
    """A core hosting a ThreadRecordingModel as `fraud`, with the given inline settings."""
    model = ThreadRecordingModel()
    loader = Loader()
    loader.models["/m"] = model
    core = ScorerCore(loader, pool, max_in_flight=8, canary_budget_s=None, **inline)
    await core.load("fraud", "v1", "/m")
    return core, model


async def test_small_frames_of_an_idle_scorer_are_scored_inline_and_the_rest_in_the_pool(
    pool: ThreadPoolExecutor,
) -> None:
    core, model = await recording_core(pool, inline_rows=1)
    loop_thread = threading.get_ident()
    model.threads.clear()
    out, _ = await core.score("fraud", frame_of(a=[1.0], b=[2.0]))
    assert out.column("sum").tolist() == [3.0]
    await core.score("fraud", frame_of(a=[1.0, 2.0], b=[2.0, 3.0]))  # two rows: past the inline bound
    assert model.threads[0] == loop_thread
    assert model.threads[1] != loop_thread
    assert core.gate.in_flight == 0
    model.gate.clear()  # a two-row call held in a scoring thread: now a small frame goes to the pool too
    held = asyncio.create_task(core.score("fraud", frame_of(a=[1.0, 1.0], b=[1.0, 1.0])))
    await wait_for(lambda: core.gate.in_flight == 1)
    small = asyncio.create_task(core.score("fraud", frame_of(a=[1.0], b=[1.0])))
    await wait_for(lambda: core.gate.in_flight == 2)
    model.gate.set()
    await small
    await held
    assert len(model.threads) == 4
    assert loop_thread not in model.threads[2:]
    assert core.gate.in_flight == 0


async def test_an_idle_scorer_inlines_calls_whose_measured_cost_fits_the_budget(
    pool: ThreadPoolExecutor,
) -> None:
    core, model = await recording_core(pool, inline_budget_s=0.05)
    hosted = core.table.resolve("fraud")
    loop_thread = threading.get_ident()

    await core.score("fraud", frame_of(a=[1.0], b=[2.0]))  # no cost measured yet: the pool
    assert hosted.row_seconds is not None
    await core.score("fraud", frame_of(a=[1.0], b=[2.0]))  # measured far under 50 ms: inline
    model.delay_s = 0.1
    await core.score("fraud", frame_of(a=[1.0], b=[2.0]))  # still inline: the cost was measured small
    assert hosted.row_seconds >= 0.1  # one slow call counts at once
    await core.score("fraud", frame_of(a=[1.0], b=[2.0]))

    assert model.threads[0] != loop_thread
    assert model.threads[1] == loop_thread
    assert model.threads[2] == loop_thread
    assert model.threads[3] != loop_thread  # a slow model no longer holds the loop
    assert core.gate.in_flight == 0


async def test_without_a_budget_or_inline_rows_every_call_uses_the_pool(pool: ThreadPoolExecutor) -> None:
    core, model = await recording_core(pool)
    for _ in range(3):
        await core.score("fraud", frame_of(a=[1.0], b=[2.0]))
    assert threading.get_ident() not in model.threads
