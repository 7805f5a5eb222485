"""What the hosting needs from a loaded model, and a hosted model's bookkeeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from scorer.bundle.plan import DensePlan, dense_plan
from scorer.service.canary import Canary
from scorer.service.dense_frames import DenseFrameDecoder
from scorer.service.double_frames import DoubleFrameDecoder

# Weight of a faster call in a model's moving average of time per row.
_COST_WEIGHT = 0.1
# A call slower than this many typical ones counts as only this many in the typical time.
_OUTLIER_CAP = 4.0


class ScoringModel(Protocol):
    """The part of `scorer.bundle.Bundle` the scorer relies on."""

    name: str
    format: str
    mleap_version: str
    sha256: str
    input_schema: list[Any]
    output_schema: list[Any]

    @property
    def root_op(self) -> Any:
        """The op of the bundle's root node."""

    def transform(self, frame: Any) -> Any:
        """Score a LeapFrame, returning it with the outputs appended."""


# Turns a bundle path into a loaded model; `scorer.bundle.load_bundle` in production.
ModelLoader = Callable[[str], ScoringModel]


@dataclass(frozen=True)
class ModelSpec:
    """A model the scorer should host: name, bundle path, optional version (default: digest) and canary;
    from a registry also the bundle's sha256 and the roles (`champion`, `shadow`) it plays."""

    name: str
    path: str
    version: str = ""
    canary: Canary | None = None
    sha256: str = ""
    roles: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """`name@version` (the bare name when the version is not known yet)."""
        return f"{self.name}@{self.version}" if self.version else self.name


@dataclass(eq=False)
class HostedModel:
    """One loaded version of a model, with its canary, health and in-flight count."""

    name: str
    version: str
    path: str
    model: ScoringModel
    canary: Canary | None = None
    serving: bool = True
    health_reason: str = ""
    in_flight: int = 0
    retired: bool = False
    row_seconds: float | None = None  # recent transform time per row, as measured on real calls
    # typical transform time of a call, by its row count's power of two, for judging deadlines (a
    # batch's time is not a row's times its rows: each call has a fixed part): a moving average in
    # which one stalled call counts at most as _OUTLIER_CAP typical ones, so that a stall cannot make
    # every later call look late
    typical_seconds: dict[int, float] = field(default_factory=dict, repr=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self._idle.set()
        # Wire columns take the declared base type of the input they feed (e.g. int vs long).
        self.inputs_by_name: dict[str, Any] = {f.name: f for f in self.model.input_schema}
        self.double_frames = DoubleFrameDecoder(self.model.input_schema)
        self.dense_frames = DenseFrameDecoder(self.model.input_schema)
        # what a call that selects nothing gets back, worked out once rather than per call
        self.output_names: list[str] = [f.name for f in self.model.output_schema]
        self.output_set = frozenset(self.output_names)
        # dense rows of exactly the assembler's inputs go straight to the classifier, where it has one
        m = self.model
        self.plan: DensePlan | None = dense_plan(m.root_op, m.input_schema, m.output_schema)

    @property
    def ref(self) -> str:
        """`name@version`, the exact address of this hosted version."""
        return f"{self.name}@{self.version}" if self.version else self.name

    def enter(self) -> None:
        """Count one more call in flight."""
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        """Count one call finished."""
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def timed(self, work: Callable[[Any], Any], arg: Any, rows: int) -> Any:
        """`work(arg)`, this version's scoring of `rows` rows, keeping `row_seconds` up to date (a slower
        call counts at once, faster ones through a moving average, so a model that slows down stops being
        scored inline at once) and the typical time of calls of this size."""
        start = time.perf_counter()
        out = work(arg)
        seconds = time.perf_counter() - start
        per_row = seconds / max(rows, 1)
        previous = self.row_seconds
        if previous is None or per_row > previous:
            self.row_seconds = per_row
        else:
            self.row_seconds = previous + _COST_WEIGHT * (per_row - previous)
        size = rows.bit_length()
        typical = self.typical_seconds.get(size)
        if typical is not None:
            seconds = typical + _COST_WEIGHT * (min(seconds, _OUTLIER_CAP * typical) - typical)
        self.typical_seconds[size] = seconds
        return out

    def expected_seconds(self, rows: int) -> float:
        """The typical transform time of a call of `rows` rows; 0 while no call of about that size ran."""
        return self.typical_seconds.get(rows.bit_length(), 0.0)

    async def drained(self) -> None:
        """Wait until no call is in flight on this version."""
        await self._idle.wait()
