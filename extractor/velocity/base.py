"""The interface every velocity store implements."""

from __future__ import annotations

from typing import Protocol

from extractor.velocity.plan import VelocityEvent
from rtscore.errors import Unavailable


class VelocityUnavailable(Unavailable):
    """The velocity store did not answer in time."""


class VelocityStore(Protocol):
    """Velocity values per transaction; `observe` reads and records in one step."""

    async def observe(self, event: VelocityEvent) -> list[float]:
        """The plan's values for `event` (its own id left out), then `event` recorded."""
        ...

    async def read(self, event: VelocityEvent) -> list[float]:
        """The plan's values for `event` without recording it."""
        ...

    async def record(self, event: VelocityEvent) -> None:
        """Record `event` without reading."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...
