"""One scorer endpoint: its channel, the load and latency the picker reads, and its health per model."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.ml.combust.mleap.pb import mleap_pb2
from protos.rtscore.v1 import scorer_pb2
from scorer.client.settings import PoolSettings

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
_STATUS_NAMES = {v: k for k, v in health_pb2.HealthCheckResponse.ServingStatus.items()}

# health_changed(endpoint, model, serving, reason): the balancer's hook, called on the event loop.
HealthListener = Callable[["Endpoint", str, bool, str], None]


class Endpoint:
    """A scorer at one address; the hot path reads `cost()` and updates `in_flight` and the EWMA."""

    def __init__(
        self,
        address: str,
        settings: PoolSettings,
        credentials: grpc.ChannelCredentials | None,
        on_health: HealthListener,
        key: str | None = None,
    ) -> None:
        self.address = address
        # the balancer's key: the address, or the address and the connection's number among several
        self.key = key or address
        self.settings = settings
        options = settings.channel_options()
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self.channel = grpc.aio.secure_channel(address, credentials, options=options)
        self.score = self.channel.unary_unary(
            "/rtscore.v1.Scorer/Score",
            request_serializer=scorer_pb2.ScoreRequest.SerializeToString,
            response_deserializer=scorer_pb2.ScoreResponse.FromString,
        )
        self.transform = self.channel.unary_unary(
            "/ml.combust.mleap.pb.Mleap/Transform",
            request_serializer=mleap_pb2.TransformFrameRequest.SerializeToString,
            response_deserializer=mleap_pb2.TransformFrameResponse.FromString,
        )
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._on_health = on_health
        self._decay = settings.ewma_decay_s
        self.in_flight = 0
        self._weight = settings.ewma_weight
        self._log_rtt = math.log(settings.initial_rtt_s)
        self.rtt_s = settings.initial_rtt_s
        self.stamp = time.monotonic()
        self.failures = 0
        self.ejections = 0
        self.ejected = False
        self.serving: dict[str, bool] = {}
        self.reasons: dict[str, str] = {}
        self._watches: dict[str, asyncio.Task[None]] = {}
        self.closed = False

    def __repr__(self) -> str:
        return f"Endpoint({self.key!r})"

    # --- the hot path -------------------------------------------------------------------------------

    def cost(self, now: float) -> float:
        """Typical latency, decayed toward zero while the endpoint sits idle, times the calls on it.

        Peak EWMA's cost (Finagle, Linkerd) with the average taken over log-latencies: one call that waited
        on a descheduled process moves it a little instead of setting it, so equal scorers on a busy host
        stay equal, while a scorer several times slower on most calls still stands out within ~10 calls.
        """
        return self.rtt_s * math.exp((self.stamp - now) / self._decay) * (self.in_flight + 1)

    def observe(self, rtt_s: float) -> None:
        """Fold in one answered call's latency."""
        self._fold(rtt_s, self._weight)
        self.failures = 0

    def observe_failure(self, rtt_s: float) -> bool:
        """Charge a failed call at least the failure penalty, heavily, so a scorer failing fast never looks
        fast (linkerd2-proxy #4537); True once the endpoint should be ejected."""
        self._fold(max(rtt_s, self.settings.failure_penalty_s), 0.5)
        self.failures += 1
        return self.failures >= self.settings.eject_after_failures

    def observe_refusal(self, rtt_s: float) -> None:
        """A call the scorer refused as too busy: charged like a failure, without counting toward ejection."""
        self._fold(max(rtt_s, self.settings.failure_penalty_s), 0.5)

    def observe_unfinished(self, waited_s: float) -> None:
        """A call abandoned after `waited_s` without an answer (a hedge answered first, or the caller left).

        Its latency was more than that, and while it stays counted the endpoint's in-flight count no longer
        shows it is stuck; so it is charged twice the wait, heavily: a stalled scorer that loses a hedge
        stops getting new calls until its cost has decayed, instead of a hedge's worth of calls each."""
        if waited_s > self.rtt_s:
            self._fold(2.0 * waited_s, 0.5)

    def _fold(self, rtt_s: float, weight: float) -> None:
        now = time.monotonic()
        # After a quiet spell the old average is stale: the longer the gap, the more the new call counts,
        # so an endpoint passed over while it was slow comes back as soon as one call finds it fast.
        weight = max(weight, 1.0 - math.exp((self.stamp - now) / self._decay))
        self._log_rtt += weight * (math.log(max(rtt_s, 1e-6)) - self._log_rtt)
        self.rtt_s = math.exp(self._log_rtt)
        self.stamp = now

    # --- health, off the call path ------------------------------------------------------------------

    def watch(self, model: str) -> None:
        """Start following the health of `model` here (idempotent)."""
        if model not in self._watches and not self.closed:
            self.reasons[model] = "no health answer yet"
            task = asyncio.get_running_loop().create_task(
                self._follow(model), name=f"rtscore-pool-health {self.address} {model}"
            )
            self._watches[model] = task

    def ready(self, model: str) -> bool:
        """True while the scorer reports `model` SERVING and the endpoint is not ejected."""
        return self.serving.get(model, False) and not self.ejected

    async def _follow(self, model: str) -> None:
        backoff = self.settings.reconnect_initial_s
        request = health_pb2.HealthCheckRequest(service=model)
        while True:
            try:
                async for reply in self._health.Watch(request):
                    backoff = self.settings.reconnect_initial_s
                    status = _STATUS_NAMES.get(reply.status, str(reply.status))
                    self._set(model, reply.status == SERVING, status)
                self._set(model, False, "health watch ended")
            except grpc.aio.AioRpcError as err:
                self._set(model, False, f"health watch: {err.code().name}: {err.details()}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    def _set(self, model: str, serving: bool, reason: str) -> None:
        self.reasons[model] = reason
        was = self.serving.get(model)
        if was != serving:
            self.serving[model] = serving
            # a scorer lost or back is worth a line; one that never served the model says so in why_not_ready
            detail = {"endpoint": self.key, "model": model, "reason": reason}
            if was:
                log.warning("scorer stopped serving a model", extra=detail)
            elif was is not None:
                log.info("scorer serves a model again", extra=detail)
            self._on_health(self, model, serving, reason)

    async def close(self) -> None:
        """Stop the health watches and close the channel (idempotent)."""
        if self.closed:
            return
        self.closed = True
        watches = list(self._watches.values())
        for task in watches:
            task.cancel()
        try:
            # gather, not each task awaited under suppress(CancelledError): that also swallowed a cancel
            # of the caller itself (the pool closing while a leaving endpoint closed), which then ran on
            await asyncio.gather(*watches, return_exceptions=True)
        finally:
            await self.channel.close()
