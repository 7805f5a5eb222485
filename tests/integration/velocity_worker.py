"""One of several processes sharing a Redis velocity store; run by test_extractor_velocity_redis.

Usage: python -m tests.integration.velocity_worker REDIS_URL NAMESPACE INDEX PROCESSES EVENTS.json
The generated transactions are dealt round-robin in blocks of BLOCK; turns pass through Redis lists
(block b waits for `turn:b`), so all processes together observe the feed in its arrival order.
Prints one JSON list: [k, values] for every transaction this process observed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import redis.asyncio as aioredis

from extractor.spec import load_spec
from extractor.velocity import VelocityEvent, VelocityPlan
from extractor.velocity.redis_store import RedisVelocityStore

BLOCK = 25


def write_events(events: list[VelocityEvent], path: str) -> None:
    """The events as JSON, for the workers to read instead of generating them again."""
    with open(path, "w") as handle:
        json.dump([[e.time_ms, e.tx_id, e.amount, e.keys] for e in events], handle)


def read_events(path: str) -> list[VelocityEvent]:
    """What `write_events` wrote."""
    rows = json.loads(Path(path).read_text())
    return [VelocityEvent(t, i, a, tuple(tuple(k) for k in keys)) for t, i, a, keys in rows]


async def main(url: str, namespace: str, index: int, processes: int, events: list[VelocityEvent]) -> None:
    plan = VelocityPlan(load_spec().spec)
    count = len(events)
    store = RedisVelocityStore(plan, url, namespace=namespace, timeout_s=5.0)
    turns = aioredis.Redis.from_url(url)
    out = []
    try:
        for block in range(index, -(-count // BLOCK), processes):
            if block > 0 and await turns.blpop([f"{namespace}:turn:{block}"], timeout=60) is None:
                raise SystemExit(f"turn {block} never came")
            for k in range(block * BLOCK, min(count, (block + 1) * BLOCK)):
                out.append([k, await store.observe(events[k])])
            await turns.rpush(f"{namespace}:turn:{block + 1}", 1)
    finally:
        await store.close()
        await turns.aclose()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    url, namespace, index, processes, path = sys.argv[1:]
    asyncio.run(main(url, namespace, int(index), int(processes), read_events(path)))
