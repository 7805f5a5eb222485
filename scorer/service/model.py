"""What the hosting needs from a loaded model, and a hosted model's bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from scorer.service.canary import Canary
from scorer.service.double_frames import DoubleFrameDecoder


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
    """A model the scorer should host: name, bundle path, optional version (default: digest) and canary."""

    name: str
    path: str
    version: str = ""
    canary: Canary | None = None


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
    _idle: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self._idle.set()
        # Wire columns take the declared base type of the input they feed (e.g. int vs long).
        self.inputs_by_name: dict[str, Any] = {f.name: f for f in self.model.input_schema}
        self.double_frames = DoubleFrameDecoder(self.model.input_schema)

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

    async def drained(self) -> None:
        """Wait until no call is in flight on this version."""
        await self._idle.wait()
