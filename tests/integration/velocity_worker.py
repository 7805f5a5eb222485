"""One of several processes sharing a Redis velocity store; run by test_extractor_velocity_redis.

Usage: python -m tests.integration.velocity_worker REDIS_URL NAMESPACE INDEX PROCESSES COUNT SEED
The generated transactions are dealt round-robin in blocks of BLOCK; turns pass through Redis lists
(block b waits for `turn:b`), so all processes together observe the feed in its arrival order.
Prints one JSON list: [k, values] for every transaction this process observed.
"""

from __future__ import annotations

import asyncio
import json
import sys

import redis.asyncio as aioredis

from extractor.velocity.redis_store import RedisVelocityStore
from tests.velocity_reference import generated_events

BLOCK = 25


async def main(url: str, namespace: str, index: int, processes: int, count: int, seed: int) -> None:
    plan, events = generated_events(count, seed)
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
    url, namespace, *numbers = sys.argv[1:]
    index, processes, count, seed = (int(n) for n in numbers)
    asyncio.run(main(url, namespace, index, processes, count, seed))
