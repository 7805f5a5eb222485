"""Redis with a local fallback: when Redis does not answer, this process's own history answers instead.

Chosen over refusing calls (UNAVAILABLE) and over zeros: a payment flow must get a decision, and zeros
would make every card look new, hiding the bursts velocity exists to catch. Every transaction is also
recorded in a bounded in-process store, so when Redis goes away the values fall back to the history
this process saw (exact for its own share of the traffic, lower than the shared values for the rest).
After a failure Redis is skipped for `retry_after_s`, then tried again by the next call; when it
answers, its values are used again. Events recorded only locally during the outage are not copied back.
"""

from __future__ import annotations

import logging
import time

from extractor.velocity.base import VelocityUnavailable
from extractor.velocity.memory import MemoryVelocityStore
from extractor.velocity.plan import VelocityEvent
from extractor.velocity.redis_store import RedisVelocityStore

log = logging.getLogger(__name__)


class FallbackVelocityStore:
    """Redis first; this process's memory when Redis fails, until Redis answers again."""

    def __init__(
        self, primary: RedisVelocityStore, local: MemoryVelocityStore, retry_after_s: float = 1.0
    ) -> None:
        self.primary = primary
        self.local = local
        self.retry_after_s = retry_after_s
        self.fallbacks = 0
        self._down_until = 0.0
        self.degraded = False

    async def observe(self, event: VelocityEvent) -> list[float]:
        """Redis's values (memory's while Redis is down); the event is recorded in both."""
        if self.degraded and time.monotonic() < self._down_until:
            self.fallbacks += 1
            return self.local.observe_now(event)
        # While Redis answers, memory only records: its values are read only when Redis fails, after
        # the record, which changes nothing since values leave the transaction's own id out.
        self.local.record_now(event)
        try:
            shared = await self.primary.observe(event)
        except VelocityUnavailable as err:
            self._fail(err)
            return self.local.read_now(event)
        if self.degraded:
            self.degraded = False
            log.warning("velocity store answers again", extra={"url": self.primary.url})
        return shared

    async def read(self, event: VelocityEvent) -> list[float]:
        """Values without recording (Redis's, else memory's)."""
        try:
            return await self.primary.read(event)
        except VelocityUnavailable:
            return self.local.read_now(event)

    async def record(self, event: VelocityEvent) -> None:
        """Record in both; a Redis failure only counts."""
        self.local.record_now(event)
        try:
            await self.primary.record(event)
        except VelocityUnavailable as err:
            self._fail(err)

    async def close(self) -> None:
        """Close Redis's connections."""
        await self.primary.close()

    def _fail(self, err: VelocityUnavailable) -> None:
        self.fallbacks += 1
        self._down_until = time.monotonic() + self.retry_after_s
        if not self.degraded:
            self.degraded = True
            log.warning("velocity falls back to this process's memory", extra={"reason": str(err)})
