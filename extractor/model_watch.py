"""Whether the model the pool serves still takes the spec's features, after start-up.

`serve` checks the fit once before it listens. Later a promotion or a load can put a version with other
inputs behind the same name, and every scorer then refuses the frames the spec makes. The caller's
transaction was valid, so it gets FAILED_PRECONDITION, never the scorer's INVALID_ARGUMENT. The model's
inputs are then asked again, at most once per `interval_s`. While they do not fit, the refusal names
every missing, mistyped and unused column, health is NOT_SERVING, and the inputs are asked every
`interval_s` whether calls come or not. The first check that finds them fitting again (a rollback, a
model made for the spec) turns health back to SERVING.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence

from extractor.check import schema_problems
from protos.rtscore.v1 import frame_pb2
from rtscore.errors import FailedPrecondition
from scorer.client.errors import ScorerCallError

log = logging.getLogger(__name__)

Describe = Callable[[], Awaitable[Sequence[frame_pb2.FieldSpec]]]
FitListener = Callable[[bool], Awaitable[None]]


class ModelWatch:
    """`refused` turns a scorer's refusal of the features into FAILED_PRECONDITION and asks the model's
    inputs again; `served`, called on success only while a misfit is known, asks whether it is over."""

    def __init__(
        self,
        features: Sequence[str],
        model: str,
        describe: Describe,
        on_fit: FitListener,
        interval_s: float = 1.0,
    ) -> None:
        self.features = tuple(features)
        self.model = model
        self.problem: str | None = None  # the misfit found by the last check; None while it fits
        self._describe = describe
        self._on_fit = on_fit
        self.interval_s = interval_s
        self._checked_at = -math.inf
        self._check_task: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None  # the next check while a misfit is known

    def refused(self, err: ScorerCallError) -> FailedPrecondition:
        """The error for a call whose features a scorer refused."""
        self._ask_again()
        if self.problem is not None:
            return FailedPrecondition(self.problem)
        return FailedPrecondition(
            f"{err.endpoint} refused the features of this extractor's spec for {self.model}"
            f" ({err.details}); the model's inputs are being checked again"
        )

    def served(self) -> None:
        """A call was scored while a misfit was known: the model may fit again."""
        self._ask_again()

    def _ask_again(self) -> None:
        now = time.monotonic()
        if self._check_task is None and now - self._checked_at >= self.interval_s:
            self._checked_at = now
            self._check_task = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        try:
            inputs = await self._describe()
        except Exception as err:  # no scorer describes it now: keep what is known, ask again later
            log.warning("the model's inputs are unknown", extra={"model": self.model, "error": str(err)})
            self._check_task = None
            if self.problem is not None:
                self._retry = asyncio.get_running_loop().call_later(self.interval_s, self._ask_again)
            return
        problems = schema_problems(self.features, inputs)
        problem = f"the spec does not fit {self.model}'s inputs: " + "; ".join(problems) if problems else None
        changed = (problem is None) != (self.problem is None)
        self.problem = problem
        self._check_task = None
        if problem is not None:
            # health NOT_SERVING may keep calls away: the next check cannot wait for one
            self._retry = asyncio.get_running_loop().call_later(self.interval_s, self._ask_again)
        if not changed:
            return
        if problem is None:
            log.info("the model fits the spec again", extra={"model": self.model})
        else:
            log.error("the model no longer fits the spec", extra={"model": self.model, "problem": problem})
        await self._on_fit(problem is None)

    async def close(self) -> None:
        """Cancel a check under way or due."""
        if self._retry is not None:
            self._retry.cancel()
        task, self._check_task = self._check_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
