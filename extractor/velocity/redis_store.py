"""The Redis velocity store, shared by every extractor process and host.

One sorted set per entity and group (score: event time in ms; member: transaction id, base amount and
distinct value). One script call per transaction reads and writes every group's set atomically, in one
round trip: for each group the count, sum and distinct count per window (computed inside Redis, so only
numbers travel), then ZADD, a trim of events older than the retention (longest window + lateness), a
cap on the entity's event count, and a TTL of the retention so idle entities expire by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError

from extractor.velocity.base import VelocityUnavailable
from extractor.velocity.plan import VelocityEvent, VelocityPlan

log = logging.getLogger(__name__)
_SEP = "\x1f"  # unit separator: transaction ids and entity values are refused when they hold one
_MODES = {(True, True): "rw", (True, False): "r", (False, True): "w"}
# KEYS: one sorted set per group with an entity. ARGV: t, own id, retention, cap, mode, then per key:
# the member to add, the window count n and n window lengths. Returns one string, comma-separated: per
# key and window the count, the sum (%.17g, exact) and the distinct count; events in (t - window, t],
# own id left out. One bulk string parses far faster in redis-py than a nested array of ~30 replies.
_SCRIPT = """
local t = tonumber(ARGV[1])
local own = ARGV[2]
local retention = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local mode = ARGV[5]
local out = {}
local a = 6
for _, key in ipairs(KEYS) do
  local member = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local windows = {}
  local span = 0
  for j = 1, n do
    windows[j] = tonumber(ARGV[a])
    if windows[j] > span then span = windows[j] end
    a = a + 1
  end
  if mode ~= 'w' then
    local rows = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%d', t - span), ARGV[1], 'WITHSCORES')
    local times, amounts, values = {}, {}, {}
    local m = 0
    for r = 1, #rows, 2 do
      local row = rows[r]
      local s1 = string.find(row, '\\31', 1, true)
      if string.sub(row, 1, s1 - 1) ~= own then
        local s2 = string.find(row, '\\31', s1 + 1, true)
        m = m + 1
        times[m] = tonumber(rows[r + 1])
        amounts[m] = tonumber(string.sub(row, s1 + 1, s2 - 1))
        values[m] = string.sub(row, s2 + 1)
      end
    end
    for j = 1, n do
      local low = t - windows[j]
      local count, total, distinct, seen = 0, 0, 0, {}
      for i = 1, m do
        if times[i] > low then
          count = count + 1
          total = total + amounts[i]
          if not seen[values[i]] then
            seen[values[i]] = true
            distinct = distinct + 1
          end
        end
      end
      out[#out + 1] = count
      out[#out + 1] = string.format('%.17g', total)
      out[#out + 1] = distinct
    end
  end
  if mode ~= 'r' then
    redis.call('ZADD', key, ARGV[1], member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%d', t - retention))
    redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    redis.call('PEXPIRE', key, retention)
  end
end
return table.concat(out, ',')
"""


class RedisVelocityStore:
    """Velocity state in Redis; every call is bounded by `timeout_s` and raises VelocityUnavailable."""

    def __init__(
        self,
        plan: VelocityPlan,
        url: str,
        *,
        namespace: str = "rtscore:velocity",
        timeout_s: float = 0.05,
        max_events: int = 10_000,
        max_connections: int = 64,
    ) -> None:
        self.plan = plan
        self.url = url
        self.timeout_s = timeout_s
        self.max_events = max_events
        self._prefix = f"{namespace}:{plan.spec_name}"
        self._client: Any = aioredis.Redis.from_url(
            url,
            # One deadline per call, `timeout_s` around the whole of it (below): redis-py's own socket
            # timeout would add a task for every send (asyncio.wait_for) and a timer for every read. A
            # call cut short there disconnects its connection, so no reply is ever read by the next.
            socket_timeout=None,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            max_connections=max_connections,
            decode_responses=False,
        )
        self._script = self._client.register_script(_SCRIPT)
        self._closed = False

    def key(self, group_index: int, entity: str) -> str:
        """The sorted set holding one entity's events for one group."""
        return f"{self._prefix}:{self.plan.groups[group_index].prefix}:{entity}"

    async def observe(self, event: VelocityEvent) -> list[float]:
        """Values for `event`, then `event` recorded: one MULTI/EXEC round trip."""
        return await self._run(event, read=True, write=True)

    async def read(self, event: VelocityEvent) -> list[float]:
        """Values for `event` without recording it."""
        return await self._run(event, read=True, write=False)

    async def record(self, event: VelocityEvent) -> None:
        """Record `event`."""
        await self._run(event, read=False, write=True)

    async def ping(self) -> None:
        """Check that Redis answers within the timeout."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._client.ping()
        except Exception as err:
            raise VelocityUnavailable(f"Redis at {self.url} does not answer: {_why(err)}") from None

    async def flush_namespace(self) -> None:
        """Delete every key of this store's namespace and spec (tests and resets)."""
        async for key in self._client.scan_iter(match=f"{self._prefix}:*", count=1000):
            await self._client.delete(key)

    async def close(self) -> None:
        """Close the connection pool; idempotent."""
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    async def _run(self, event: VelocityEvent, *, read: bool, write: bool) -> list[float]:
        plan = self.plan
        t = event.time_ms
        keys: list[str] = []
        args: list[str | int] = [t, event.tx_id, plan.retention_ms, self.max_events, _MODES[(read, write)]]
        active: list[int] = []
        for index, (entity, value) in enumerate(event.keys):
            if not entity:
                continue
            group = plan.groups[index]
            keys.append(self.key(index, entity))
            active.append(index)
            args += [
                f"{event.tx_id}{_SEP}{event.amount!r}{_SEP}{value}",
                len(group.windows_ms),
                *group.windows_ms,
            ]
        if not active:
            return plan.zeros() if read else []
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await self._script(keys=keys, args=args)
        except Exception as err:
            # Besides RedisError and timeouts, redis-py lets internal errors out of a connection that
            # broke mid-call (AttributeError on a closed writer): every failure here means "not now".
            if not isinstance(err, RedisError | TimeoutError):
                log.info("Redis call failed", exc_info=True)
            if isinstance(err, ConnectionError | OSError | AttributeError):
                # A restarted Redis leaves every idle pooled connection dead: drop them at once, so the
                # next call connects afresh instead of finding the next dead one. Closing a dead
                # connection can itself time out or fail; the answer is "not now" all the same.
                with contextlib.suppress(Exception):
                    await self._client.connection_pool.disconnect(inuse_connections=False)
            raise VelocityUnavailable(f"Redis at {self.url} did not answer: {_why(err)}") from None
        if not read:
            return []
        values = reply.split(b",")
        out: list[float] = []
        at = 0
        position = 0
        for index, group in enumerate(plan.groups):
            if at < len(active) and active[at] == index:
                for _window in group.windows_ms:
                    count, total, distinct = values[position : position + 3]
                    position += 3
                    if group.count:
                        out.append(float(count))
                    if group.sum:
                        out.append(float(total))
                    if group.distinct is not None:
                        out.append(float(distinct))
                at += 1
            else:
                out += [0.0] * group.width
        return out


def _why(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
