"""The transport-neutral scorer: load, swap, unload and score models, and run their canaries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np

from rtscore.errors import InvalidArgument, RtscoreError
from rtscore.heap import freeze_long_lived
from scorer.bundle.plan import DensePlan
from scorer.frame import Field
from scorer.service.admission import AdmissionGate
from scorer.service.canary import Canary, CanaryResult, run_canary
from scorer.service.errors import CanaryFailed
from scorer.service.frames import check_inputs
from scorer.service.model import HostedModel, ModelLoader
from scorer.service.table import ModelTable

log = logging.getLogger(__name__)


class CoreEvents(Protocol):
    """What the core reports to health and metrics."""

    def model_loaded(self, hosted: HostedModel, seconds: float) -> None:
        """A model version was loaded and installed."""

    def canary_ran(self, hosted: HostedModel, result: CanaryResult) -> None:
        """A canary ran for `hosted`."""

    async def models_changed(self, table: ModelTable) -> None:
        """The set of hosted models, or one's health, changed."""


class ScorerCore:
    """Hosts models: scoring off the event loop, atomic swaps, canaries and bounded in-flight work."""

    def __init__(
        self,
        loader: ModelLoader,
        scoring_pool: Executor,
        *,
        max_in_flight: int,
        canary_budget_s: float | None,
        events: Sequence[CoreEvents] = (),
        inline_rows: int = 0,
        inline_budget_s: float = 0.0,
        deadline_margin_s: float | None = 0.001,
        scoring_threads: int = 1,
    ) -> None:
        self.table = ModelTable()
        margin = 0.0 if deadline_margin_s is None else deadline_margin_s
        self.gate = AdmissionGate(max_in_flight, deadline_margin_s=margin, threads=scoring_threads)
        self._by_deadline = deadline_margin_s is not None
        self._loader = loader
        self._pool = scoring_pool
        self._budget = canary_budget_s
        self._events = events
        self._inline_rows = inline_rows
        self._inline_budget_s = inline_budget_s
        self._swap_lock = asyncio.Lock()

    async def score(
        self,
        ref: str,
        frame: Any,
        checked_for: HostedModel | None = None,
        deadline_left_s: float | None = None,
    ) -> tuple[Any, HostedModel]:
        """Score `frame` with the model `ref` names; returns the output frame and the version used.

        `checked_for` is the version the caller already resolved and fitted the frame to: that version
        scores it, so a frame is never checked against one version and scored by another.
        `deadline_left_s` is the caller's time left: a call that cannot finish in it is refused at once.
        """
        hosted = checked_for or self.table.resolve(ref)
        self._admit(hosted, frame.n_rows, deadline_left_s)
        try:
            if checked_for is None:
                frame = check_inputs(frame, hosted.model.input_schema)
        except BaseException:
            self.gate.release()
            raise
        return await self._run(hosted, hosted.model.transform, frame, frame.n_rows), hosted

    async def score_dense(
        self, hosted: HostedModel, plan: DensePlan, matrix: np.ndarray, deadline_left_s: float | None = None
    ) -> list[tuple[Field, np.ndarray]]:
        """`plan`'s output columns for `matrix`, a dense block of its inputs, scored by `hosted` (the
        version `plan` belongs to) under the same admission, deadline and threading as `score`."""
        rows = matrix.shape[0]
        self._admit(hosted, rows, deadline_left_s)
        return await self._run(hosted, plan.run, matrix, rows)

    def _admit(self, hosted: HostedModel, rows: int, deadline_left_s: float | None) -> None:
        """Take an in-flight slot for a call of `rows` rows, or refuse it at once."""
        if deadline_left_s is None or not self._by_deadline:
            self.gate.acquire()
        else:
            self.gate.acquire(deadline_left_s, hosted.expected_seconds(rows))

    async def _run(self, hosted: HostedModel, work: Callable[[Any], Any], arg: Any, rows: int) -> Any:
        """`work(arg)` as `hosted`'s scoring of `rows` rows, holding the slot `_admit` took until it ends."""
        hosted.enter()
        if self.gate.in_flight == 1 and self._inline(hosted, rows):
            # Alone and short: a hand-off to a scoring thread would cost more than the transform.
            try:
                return hosted.timed(work, arg, rows)
            finally:
                self._finished(hosted)
        loop = asyncio.get_running_loop()
        job = self._pool.submit(hosted.timed, work, arg, rows)
        # The slot and the lease are held until the transform really ends, not until the caller
        # stops waiting: a thread cannot be interrupted, and abandoned work must still count.
        job.add_done_callback(lambda _: _call_soon(loop, self._finished, hosted))
        return await asyncio.wrap_future(job)

    def _inline(self, hosted: HostedModel, rows: int) -> bool:
        """Whether a call of `rows` rows is short enough to score on the event loop."""
        if rows <= self._inline_rows:
            return True
        cost = hosted.row_seconds
        return cost is not None and rows * cost <= self._inline_budget_s

    def _finished(self, hosted: HostedModel) -> None:
        self.gate.release()
        hosted.leave()

    async def load(self, name: str, version: str, path: str, canary: Canary | None = None) -> HostedModel:
        """Load the bundle at `path` as `name`, check its canary, then swap it in atomically."""
        hosted = await self.prepare(name, version, path, canary)
        async with self._swap_lock:
            previous = self.table.install(hosted)
            freeze_long_lived(collect=False)  # the new version lives on: out of the collector's walks
            await self._changed()
        if previous is not None:
            await previous.drained()
            log.info("model version retired", extra={"model": previous.ref})
        return hosted

    async def prepare(self, name: str, version: str, path: str, canary: Canary | None = None) -> HostedModel:
        """Load the bundle at `path` as version `version` of `name` and pass its canary, without routing
        any call to it yet (`load` or `route` does that); CanaryFailed if the canary is wrong."""
        if not name or "@" in name or ":" in name:
            raise InvalidArgument(f"model name {name!r} must be non-empty and contain no '@' or ':'")
        start = time.perf_counter()
        # Loading compiles forests: a thread of its own keeps it off the loop and the scoring pool.
        model = await asyncio.to_thread(self._load_model, path)
        if canary is not None:
            canary = Canary(check_inputs(canary.frame, model.input_schema), canary.expected)
        hosted = HostedModel(name, version or model.sha256[:12], path, model, canary)
        if canary is not None:
            result = await self._run_canary(hosted, budget_s=None)  # first call may warm caches
            if not result.ok:
                raise CanaryFailed(
                    f"model {hosted.ref} from {path}: canary failed: {result.reason}; not loaded"
                )
        seconds = time.perf_counter() - start
        log.info("model loaded", extra={"model": hosted.ref, "path": path, "seconds": round(seconds, 4)})
        for events in self._events:
            events.model_loaded(hosted, seconds)
        return hosted

    async def route(
        self,
        hosted: Sequence[HostedModel],
        active: Mapping[str, HostedModel],
        aliases: Mapping[str, HostedModel],
    ) -> list[HostedModel]:
        """Switch every name and alias at once (see `ModelTable.route`); returns the versions dropped,
        once their in-flight calls have finished."""
        async with self._swap_lock:
            dropped = self.table.route(hosted, active, aliases)
            await self._changed()
        for old in dropped:
            await old.drained()
            log.info("model version retired", extra={"model": old.ref})
        return dropped

    async def unload(self, ref: str) -> HostedModel:
        """Stop routing to the model `ref` names and return once its in-flight calls finished."""
        async with self._swap_lock:
            hosted = self.table.remove(ref)
            await self._changed()
        await hosted.drained()
        log.info("model unloaded", extra={"model": hosted.ref})
        return hosted

    async def check_canaries(self) -> None:
        """Run every hosted model's canary and update its health; a late answer is checked once more."""
        for hosted in self.table.models():
            if hosted.canary is None:
                continue
            result = await self._run_canary(hosted, self._budget)
            if result.slow:
                # One late answer is as often the host (a vCPU taken away, the forest paged back in)
                # as the model; two in a row are the model's.
                result = await self._run_canary(hosted, self._budget)
            if result.ok != hosted.serving or result.reason != hosted.health_reason:
                if result.ok != hosted.serving:
                    level = logging.INFO if result.ok else logging.WARNING
                    detail = {"model": hosted.ref, "reason": result.reason}
                    log.log(level, "model health changed", extra=detail)
                hosted.serving, hosted.health_reason = result.ok, result.reason
                await self._changed()

    async def drain(self) -> None:
        """Refuse new calls and wait for the in-flight ones to finish."""
        self.gate.close()
        for hosted in self.table.models():
            hosted.serving = False
        await self._changed()
        for hosted in self.table.models():
            await hosted.drained()

    def _load_model(self, path: str) -> Any:
        try:
            return self._loader(path)
        except RtscoreError:
            raise
        except OSError as err:
            raise InvalidArgument(f"cannot read bundle {path}: {err.strerror or err}") from err
        except Exception as err:  # a malformed file the reader did not anticipate is still bad input
            log.exception("bundle reader failed", extra={"path": path})
            raise InvalidArgument(f"cannot load bundle {path}: {type(err).__name__}: {err}") from err

    async def _run_canary(self, hosted: HostedModel, budget_s: float | None) -> CanaryResult:
        assert hosted.canary is not None
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, run_canary, hosted.model, hosted.canary, budget_s)
        for events in self._events:
            events.canary_ran(hosted, result)
        return result

    async def _changed(self) -> None:
        for events in self._events:
            await events.models_changed(self.table)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[HostedModel], None], arg: HostedModel) -> None:
    # A closed loop means the process is exiting and nothing waits on the counts any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, arg)
