"""The extractor's composition root: metrics, spec, velocity, scorer pool, shadow producer, gRPC server."""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from extractor.check import require_match
from extractor.core import ExtractorCore, Shadow, Thresholds
from extractor.features import FeatureExtractor
from extractor.grpc_api import ExtractorServicer
from extractor.metrics import ExtractorMetrics
from extractor.model_watch import ModelWatch
from extractor.settings import ExtractorSettings
from extractor.shadow import ShadowProducer, ShadowSample
from extractor.spec import load_spec
from extractor.velocity import VelocityStore
from extractor.velocity.fallback import FallbackVelocityStore
from extractor.velocity.memory import MemoryVelocityStore
from extractor.velocity.redis_store import RedisVelocityStore
from protos.rtscore.v1 import extractor_pb2, extractor_pb2_grpc, frame_pb2, scorer_pb2, scorer_pb2_grpc
from rtscore.cpu_latency import CpuLatencyRequest
from rtscore.errors import FailedPrecondition, InvalidArgument, Unavailable
from rtscore.heap import freeze_long_lived
from rtscore.signals import ignore_stop_signals, stop_on_signals
from rtscore.tls import optional_channel_credentials

if TYPE_CHECKING:
    from scorer.client import EndpointSource, ScorerPool

log = logging.getLogger(__name__)
SERVICE = extractor_pb2.DESCRIPTOR.services_by_name["Extractor"].full_name


class ExtractorServer:
    """One extractor process; `async with` opens everything in order and closes it in reverse."""

    def __init__(self, settings: ExtractorSettings) -> None:
        self.settings = settings
        self.port = 0
        self.metrics_port: int | None = None
        self._stack = AsyncExitStack()
        self._server: grpc.aio.Server | None = None
        self._draining = False

    async def __aenter__(self) -> ExtractorServer:
        s = self.settings
        stack = self._stack
        try:
            self.metrics = ExtractorMetrics()
            stack.callback(self.metrics.close)
            self.features = FeatureExtractor(load_spec(s.spec))
            self.store = self._velocity_store()
            stack.push_async_callback(self.store.close)
            self.pool = await stack.enter_async_context(self._pool())
            telemetry = self.pool.telemetry  # its counters, read at a scrape: nothing added per call
            self.metrics.watch("pool_retries", lambda: telemetry.retries)
            self.metrics.watch("pool_hedges", lambda: telemetry.hedges)
            self.metrics.watch("pool_hedge_wins", lambda: telemetry.hedge_wins)
            self.metrics.watch("pool_ejections", lambda: telemetry.ejections)
            await self._check_model()
            watch = ModelWatch(self.features.names, s.model, self._describe_model, self._model_fits)
            stack.push_async_callback(watch.close)
            shadow = self._shadow()
            if shadow is not None:
                stack.callback(shadow.producer.close)
            self.core = ExtractorCore(
                self.features, self.store, self.pool, s.model,
                thresholds=Thresholds(s.review_at, s.decline_at), score_timeout_s=s.score_timeout_s,
                dense_frames=s.dense_frames, shadow=shadow, metrics=self.metrics, watch=watch,
            )  # fmt: skip
            if s.metrics_port is not None:
                self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
            self.health = HealthServicer()
            self._server = self._grpc_server()
            self.port = self._server.add_insecure_port(f"{s.host}:{s.port}")
            await self._server.start()
            stack.push_async_callback(self._stop_server, 0.0)
            for name in ("", SERVICE):
                await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        except BaseException:
            await stack.aclose()
            raise
        log.info("extractor listening", extra={"host": s.host, "port": self.port, "model": s.model})
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    def _velocity_store(self) -> VelocityStore:
        s = self.settings
        local = MemoryVelocityStore(self.features.plan, max_entities=s.memory_max_entities)
        if s.velocity == "memory":
            return local
        if not s.redis_url:
            raise InvalidArgument("velocity on Redis needs --redis-url (or RTSCORE_REDIS_URL)")
        redis = RedisVelocityStore(self.features.plan, s.redis_url, timeout_s=s.velocity_timeout_s)
        store = FallbackVelocityStore(redis, local, retry_after_s=s.velocity_retry_s)
        self.metrics.watch("velocity_fallbacks", lambda: store.fallbacks)
        return store

    def _pool(self) -> ScorerPool:
        from scorer.client import PoolSettings, ScorerPool, registry_endpoints, static_endpoints
        from scorer.service.admin import read_token

        s = self.settings
        source: EndpointSource
        if s.scorers:
            source = static_endpoints(s.scorers)
        elif s.registry:
            source = registry_endpoints(
                s.registry, pool=s.pool, environment=s.environment,
                token=read_token(s.registry_token_file),  # None: RTSCORE_TOKEN
                credentials=optional_channel_credentials(s.registry_ca, s.registry_cert, s.registry_key),
            )  # fmt: skip
        else:
            raise InvalidArgument("name the scorers (--scorers H:P,…) or a registry and pool")
        scorers_tls = optional_channel_credentials(s.scorer_ca, s.scorer_cert, s.scorer_key)
        pool = PoolSettings(
            default_timeout_s=s.score_timeout_s, attempt_timeout_s=s.score_timeout_s,
            connections_per_endpoint=s.scorer_connections, hedge=s.hedge, hedge_delay_s=s.hedge_delay_s,
        )  # fmt: skip
        return ScorerPool(source, pool, scorers_tls)

    async def _check_model(self) -> None:
        """FAILED_PRECONDITION, once, when the spec's features are not exactly the model's inputs."""
        s = self.settings
        try:
            await self.pool.wait_ready(s.model, timeout=s.wait_ready_s)
        except Unavailable as err:
            raise Unavailable(f"no scorer hosts {s.model} within {s.wait_ready_s:.0f}s: {err}") from None
        require_match(self.features.names, await self._describe_model(), s.model)

    async def _describe_model(self) -> list[frame_pb2.FieldSpec]:
        return await _model_inputs(self.pool.endpoints(), self.settings.model, self.pool.credentials)

    async def _model_fits(self, fits: bool) -> None:
        """Health follows the model's fit with the spec once serving (`ModelWatch`)."""
        if self._draining:
            return
        statuses = health_pb2.HealthCheckResponse
        status = statuses.SERVING if fits else statuses.NOT_SERVING
        for name in ("", SERVICE):
            await self.health.set(name, status)

    def _shadow(self) -> Shadow | None:
        s = self.settings
        if not s.shadow_topic or s.shadow_fraction <= 0:
            return None
        if not s.kafka_bootstrap:
            raise InvalidArgument("shadow copies need Kafka: --kafka-bootstrap or RTSCORE_KAFKA_BOOTSTRAP")
        producer = ShadowProducer(
            s.kafka_bootstrap, s.shadow_topic, queue_max=s.shadow_queue_max,
            message_timeout_ms=s.shadow_message_timeout_ms,
        ).start()  # fmt: skip
        counts = producer.counts
        self.metrics.watch("shadow_offered", lambda: counts.offered)
        self.metrics.watch("shadow_delivered", lambda: counts.delivered)
        self.metrics.watch("shadow_dropped", lambda: counts.dropped)
        sample = ShadowSample(s.shadow_fraction, s.shadow_key)
        return Shadow(producer, sample, environment=s.environment, pool=s.pool)

    def _grpc_server(self) -> grpc.aio.Server:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        servicer = ExtractorServicer(self.core, self.metrics, self.settings.call_timeout_s)
        extractor_pb2_grpc.add_ExtractorServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        return server

    async def drain(self) -> None:
        """Health NOT_SERVING, then stop with the grace for in-flight calls."""
        if self._draining:
            return
        self._draining = True
        await self.health.enter_graceful_shutdown()
        await self._stop_server(self.settings.drain_grace_s)

    async def _stop_server(self, grace: float) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop(grace)


async def _model_inputs(
    endpoints: list[str], model: str, credentials: grpc.ChannelCredentials | None
) -> list[frame_pb2.FieldSpec]:
    """The model's input schema, from the first scorer that describes it."""
    problems = []
    for endpoint in endpoints:
        opened = (
            grpc.aio.insecure_channel(endpoint)
            if credentials is None
            else grpc.aio.secure_channel(endpoint, credentials)
        )
        async with opened as channel:
            try:
                info = await scorer_pb2_grpc.ScorerStub(channel).GetModel(
                    scorer_pb2.GetModelRequest(model=model), timeout=5.0
                )
            except grpc.aio.AioRpcError as err:
                problems.append(f"{endpoint}: {err.code().name}: {err.details()}")
                continue
        return list(info.inputs)
    raise FailedPrecondition(f"no scorer describes {model}: {'; '.join(problems) or 'no endpoints'}")


async def serve(settings: ExtractorSettings) -> int:
    """Run one extractor until SIGTERM or SIGINT, then drain; returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as held:
        if settings.cpu_latency_us is not None:
            held.enter_context(CpuLatencyRequest(settings.cpu_latency_us))
        server = await held.enter_async_context(ExtractorServer(settings))
        stop_on_signals(loop, stop)
        metrics = f" metrics on {settings.metrics_host}:{server.metrics_port}" if server.metrics_port else ""
        freeze_long_lived()  # before the first call: no full collection walks the modules
        # The one line a supervisor or test reads to learn the port (0 picks a free one).
        print(f"rtscore extractor: serving on {settings.host}:{server.port}{metrics}", flush=True)
        await stop.wait()
        await server.drain()
        ignore_stop_signals()
    print("rtscore extractor: drained", file=sys.stderr, flush=True)
    return 0
