"""`rtscore shadow run`'s composition root: database, registry follower, dead letters, consumer, loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from prometheus_client import start_http_server

from registry.follow import RegistryConnection
from rtscore.errors import InvalidArgument
from rtscore.signals import ignore_stop_signals, stop_on_signals
from shadow.consumer import GroupConsumer
from shadow.db import connect_pool
from shadow.deadletter import DeadLetterProducer
from shadow.following import ShadowModels
from shadow.settings import ShadowSettings
from shadow.store import ScoreStore
from shadow.worker import ShadowWorker

log = logging.getLogger(__name__)


def consumer_config(settings: ShadowSettings) -> dict[str, object]:
    """librdkafka settings of a worker (the assignor and offset handling are GroupConsumer's)."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": settings.group,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(settings.session_timeout_ms // 5, 500),
        "fetch.wait.max.ms": 50,
    }
    if settings.instance_id:
        config["group.instance.id"] = settings.instance_id
    return config


async def run(settings: ShadowSettings, stop: asyncio.Event | None = None) -> None:
    """Run one worker until `stop` is set, or, the process's own run (no `stop`), until SIGTERM or SIGINT;
    the batch in hand is finished first."""
    if not settings.database_url:
        raise InvalidArgument("no score database: set RTSCORE_DATABASE_URL or RTSCORE_SHADOW_DATABASE_URL")
    if not settings.kafka_bootstrap:
        raise InvalidArgument("no Kafka: set RTSCORE_KAFKA_BOOTSTRAP")
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        if stop is None:
            stop = asyncio.Event()
            stop_on_signals(loop, stop)
            stack.callback(ignore_stop_signals)  # last out: the rest has closed
        if settings.metrics_port is not None:
            server, _thread = start_http_server(settings.metrics_port, addr="127.0.0.1")
            stack.callback(server.shutdown)
        pool = await connect_pool(settings.database_url)
        stack.push_async_callback(pool.close)
        store = ScoreStore(pool, settings.group, settings.topic)
        connection = RegistryConnection(settings.registry, settings.token)
        follower = ShadowModels(connection, settings.environment, settings.pool, settings.bundle_dir)
        stack.push_async_callback(follower.close)
        if not await follower.start(stop):
            return
        dead_letters = DeadLetterProducer(settings.kafka_bootstrap, settings.dead_letters, settings.group)
        stack.callback(dead_letters.close)
        consumer = GroupConsumer(
            consumer_config(settings), settings.topic, store, loop, retry_s=settings.retry_initial_s
        )
        stack.push_async_callback(consumer.close)
        worker = ShadowWorker(settings, consumer, store, dead_letters, follower.models)
        log.info(
            "shadow worker: group %s on %s, models %s",
            settings.group,
            settings.topic,
            follower.current.refs(),
        )
        print(f"shadow worker ready: group {settings.group} topic {settings.topic}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await worker.run(stop)
