"""Hedged calls ("The Tail at Scale"): a second endpoint after a delay, capped, first answer wins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from scorer.client.endpoint import Endpoint

T = TypeVar("T")

# Recompute the running quantile after this many new samples (sorting 512 floats costs ~40 µs).
_REFRESH_EVERY = 64


class RunningQuantile:
    """A quantile of the last `size` latencies, refreshed every few samples; off the hot path's way."""

    def __init__(self, quantile: float = 0.95, size: int = 512, initial_s: float = 0.005) -> None:
        self.quantile = quantile
        self._samples = [initial_s] * size
        self._next = 0
        self._since = 0
        self.value = initial_s

    def record(self, seconds: float) -> None:
        """Add one latency."""
        self._samples[self._next] = seconds
        self._next = (self._next + 1) % len(self._samples)
        self._since += 1
        if self._since >= _REFRESH_EVERY:
            self._since = 0
            ordered = sorted(self._samples)
            self.value = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]


class CallBudget:
    """A token bucket: every call earns `share` of an extra call (a hedge, a busy scorer asked again),
    an extra call spends one whole token."""

    def __init__(self, share: float, burst: float = 10.0, initial: float = 1.0) -> None:
        self.share = share
        self.burst = max(1.0, burst)
        self.tokens = min(initial, self.burst) if share > 0 else 0.0

    def earn(self) -> None:
        """One call was made."""
        self.tokens = min(self.tokens + self.share, self.burst)

    def spend(self) -> bool:
        """True (and one token fewer) when a hedge is allowed now."""
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


Attempt = Callable[[Endpoint, float], Coroutine[Any, Any, T]]


async def race(
    first: Endpoint,
    attempt: Attempt[T],
    deadline: float,
    delay: float,
    backup: Callable[[], Endpoint | None],
) -> tuple[T, Endpoint, bool]:
    """`attempt` on `first`; if it has not answered after `delay`, also on `backup()`; the first answer
    wins and the other is cancelled. Returns the result, who answered, and whether a hedge went out."""
    loop = asyncio.get_running_loop()
    primary: asyncio.Task[T] = loop.create_task(attempt(first, deadline - loop.time()))
    tasks: dict[asyncio.Task[T], Endpoint] = {primary: first}
    try:
        done, _ = await asyncio.wait((primary,), timeout=delay)
        if done:
            return primary.result(), first, False
        second = backup()
        if second is None or deadline - loop.time() <= 0:
            return await primary, first, False
        tasks[loop.create_task(attempt(second, deadline - loop.time()))] = second
        pending = set(tasks)
        error: BaseException | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is None:
                    return task.result(), tasks[task], True
                error = exc
        assert error is not None
        raise error
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
