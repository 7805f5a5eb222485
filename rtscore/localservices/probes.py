"""Does a service really answer? One real request each, with a bounded wait."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


def postgres_answers(url: str, timeout_s: float) -> str | None:
    """Poll `select 1` on `url` until it works (None) or `timeout_s` passes (the last error)."""
    return _poll(lambda remaining: run_in_own_loop(lambda: _select_one(url, remaining)), timeout_s)


def kafka_answers(bootstrap: str, timeout_s: float) -> str | None:
    """Poll a metadata request on `bootstrap` until a broker answers (None) or `timeout_s` passes."""
    return _poll(lambda remaining: _list_brokers(bootstrap, remaining), timeout_s)


def redis_answers(url: str, timeout_s: float) -> str | None:
    """Poll PING on the Redis at `url` until it answers (None) or `timeout_s` passes (the last error)."""
    return _poll(lambda remaining: _ping_redis(url, remaining), timeout_s)


def _poll(attempt: Callable[[float], None], timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    last = "no attempt made"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return last
        try:
            attempt(max(1.0, min(remaining, 5.0)))
        except Exception as err:  # any failure to answer is a reason to retry until the deadline
            last = f"{type(err).__name__}: {err}".strip()
        else:
            return None
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


def run_in_own_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine `make()` to completion on a fresh loop in a thread of its own."""
    # asyncio.run cannot nest inside a running loop (async fixtures, notebooks), so the call
    # gets a thread and a loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _select_one(url: str, timeout_s: float) -> None:
    conn = await asyncpg.connect(url, timeout=timeout_s)
    try:
        value = await conn.fetchval("select 1", timeout=timeout_s)
    finally:
        await conn.close()
    if value != 1:
        raise RuntimeError(f"select 1 returned {value!r}")


def _list_brokers(bootstrap: str, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient

    # log_level 0: a broker that is still starting is expected here, not worth a line on stderr.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    metadata = admin.list_topics(timeout=timeout_s)
    if not metadata.brokers:
        raise RuntimeError("metadata lists no brokers")


def _ping_redis(url: str, timeout_s: float) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        if client.ping() is not True:
            raise RuntimeError("PING did not answer PONG")
    finally:
        client.close()
