"""`ScorerPool`: calls to a set of scorers, balanced in the application over one channel per endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from opentelemetry import metrics, propagate, trace

from protos.ml.combust.mleap.pb import mleap_pb2
from protos.rtscore.v1 import frame_pb2, scorer_pb2
from rtscore.errors import PermissionDenied, Unavailable
from rtscore.tasks import cancel_and_wait
from scorer.client.balancer import Balancer
from scorer.client.batching import MicroBatcher
from scorer.client.endpoint import Endpoint
from scorer.client.errors import (
    CALLER_ERRORS,
    OVERLOADED,
    RETRYABLE,
    DeadlineExceeded,
    ModelNotHosted,
    ScorerCallError,
)
from scorer.client.hedging import CallBudget, RunningQuantile, race
from scorer.client.picker import EMPTY, Picker
from scorer.client.scored import Scored
from scorer.client.settings import PoolSettings
from scorer.client.sources import EndpointSource
from scorer.client.telemetry import PoolTelemetry

log = logging.getLogger(__name__)

T = TypeVar("T")
Metadata = Sequence[tuple[str, str]]
# While no endpoint is ready, a waiting call looks again this often (for "hosted nowhere").
_READY_POLL_S = 0.05
_NO_METADATA = grpc.aio.Metadata()
# Busy scorers asked again that the budget holds at most: a stall of a few hundred ms at a few hundred
# calls per second refuses about this many, and each is asked again once or twice.
_BUSY_RETRY_BURST = 200.0


class ScorerPool:
    """Scores through whichever ready scorer is cheapest now; `async with` starts and stops it."""

    def __init__(
        self,
        source: EndpointSource,
        settings: PoolSettings | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.source = source
        self.settings = settings or PoolSettings()
        self.credentials = credentials
        self.telemetry = PoolTelemetry(meter_provider)
        self._balancer: Balancer | None = None
        self._follow: asyncio.Task[None] | None = None
        self._latency = RunningQuantile(
            self.settings.hedge_quantile, initial_s=self.settings.hedge_delay_s or 0.005
        )
        self._hedges = CallBudget(self.settings.hedge_max_share if self.settings.hedge else 0.0)
        self._busy_retries = CallBudget(
            self.settings.busy_retry_share, burst=_BUSY_RETRY_BURST, initial=_BUSY_RETRY_BURST
        )
        self._batcher: MicroBatcher | None = None

    # --- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> ScorerPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start following the endpoint source (idempotent)."""
        if self._balancer is not None:
            return
        self._balancer = Balancer(self.settings, self.credentials, self.telemetry)
        self._follow = asyncio.create_task(self._follow_source(self._balancer), name="rtscore-pool-members")
        if self.settings.batch:
            self._batcher = MicroBatcher(self._score_request, self.settings, self.telemetry)

    async def _follow_source(self, balancer: Balancer) -> None:
        async for addresses in self.source.updates():
            for endpoint in balancer.set_endpoints(addresses):
                await endpoint.close()  # its in-flight calls end with the channel: retried elsewhere
        await asyncio.Event().wait()  # a static list never changes: keep the endpoints

    async def close(self) -> None:
        """Stop following, close every channel (idempotent)."""
        balancer, self._balancer = self._balancer, None
        if balancer is None:
            return
        await cancel_and_wait(self._follow)
        if self._batcher is not None:
            await self._batcher.close()
        for endpoint in balancer.close():
            await endpoint.close()

    def _started(self) -> Balancer:
        if self._balancer is None:
            raise Unavailable("the scorer pool is not started (use `async with pool`)")
        return self._balancer

    # --- calls --------------------------------------------------------------------------------------

    async def wait_ready(self, model: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once some scorer serves `model`; Unavailable, saying why, after `timeout` seconds, or
        PermissionDenied as soon as the endpoint source refuses the pool's credentials (a registry that
        refuses the token: waiting would not mend it)."""
        balancer = self._started()
        ready = balancer.want(model)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready.is_set():
            left = deadline - loop.time()
            if self.source.refused and not balancer.endpoints:
                raise PermissionDenied(
                    f"no scorer ready for {model!r} ({self.source.description}): {self.source.problem}"
                )
            if left <= 0:
                raise Unavailable(
                    f"no scorer ready for {model!r} within {timeout:g} s ({self.source.description}): "
                    + balancer.why_not_ready(model)
                    + (f" ({self.source.problem})" if self.source.problem else "")
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), min(left, _READY_POLL_S))

    async def score(
        self,
        model: str,
        frame: frame_pb2.Frame,
        timeout: float | None = None,  # noqa: ASYNC109 (the call's deadline, sent to the scorer)
        metadata: Metadata = (),
        *,
        select: Sequence[str] = (),
        include_inputs: bool = False,
    ) -> Scored:
        """Score `frame` with `model` on one ready scorer, failing over within the deadline."""
        request = scorer_pb2.ScoreRequest(
            model=model, frame=frame, select=select, include_inputs=include_inputs
        )
        return await self.score_request(request, timeout, metadata)

    async def score_request(
        self,
        request: scorer_pb2.ScoreRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (the call's deadline)
        metadata: Metadata = (),
    ) -> Scored:
        """`score` for a request already built (a load generator sends the same ones many times)."""
        seconds = timeout or self.settings.default_timeout_s
        frame = request.frame
        if (
            self._batcher is not None
            and frame.rows == 1
            and not request.select
            and not request.include_inputs
        ):
            return await self._batcher.submit(request.model, frame, seconds, metadata)
        return await self._score_request(request, seconds, metadata)

    async def _score_request(
        self,
        request: scorer_pb2.ScoreRequest,
        timeout: float,  # noqa: ASYNC109 (the call's deadline)
        metadata: Metadata,
    ) -> Scored:
        md = with_trace_context(metadata)

        def send(endpoint: Endpoint, seconds: float) -> Awaitable[scorer_pb2.ScoreResponse]:
            return endpoint.score(request, timeout=seconds, metadata=md)

        response, endpoint, attempts, hedged = await self._call(request.model, send, timeout)
        return Scored(response, endpoint.address, attempts, hedged)

    async def transform(
        self,
        request: mleap_pb2.TransformFrameRequest,
        timeout: float | None = None,  # noqa: ASYNC109 (the call's deadline)
        metadata: Metadata = (),
    ) -> tuple[mleap_pb2.TransformFrameResponse, str]:
        """MLeap's `Transform` on one ready scorer of `request.model_name`; the reply and who sent it."""
        md = with_trace_context(metadata)

        def send(endpoint: Endpoint, seconds: float) -> Awaitable[mleap_pb2.TransformFrameResponse]:
            return endpoint.transform(request, timeout=seconds, metadata=md)

        reply, endpoint, _, _ = await self._call(
            request.model_name, send, timeout or self.settings.default_timeout_s
        )
        return reply, endpoint.address

    async def _call(
        self,
        model: str,
        send: Callable[[Endpoint, float], Awaitable[T]],
        timeout: float,  # noqa: ASYNC109 (the call's deadline)
    ) -> tuple[T, Endpoint, int, bool]:
        balancer = self._started()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        picker = balancer.pickers.get(model) or await self._wait_for_picker(balancer, model, deadline)
        tried: list[Endpoint] = []
        failed = 0  # attempts that failed; a busy scorer's refusal is not a failure
        waits = 0  # backoffs taken because every ready scorer refused the call as busy
        failure = ""
        busy = False  # the last attempt was refused by a busy scorer
        per_attempt = self.settings.attempt_timeout_s
        self._hedges.earn()
        self._busy_retries.earn()
        while True:
            endpoint = picker.pick(tried)
            if endpoint is None and busy:
                if not await self._busy_backoff(waits, deadline):
                    raise Unavailable(f"every scorer ready for {model!r} is busy; the last: {failure}")
                waits += 1
                endpoint = balancer.pickers.get(model, EMPTY).pick()  # the ready ones, busy ones included
            if endpoint is None:
                raise Unavailable(f"no other scorer ready for {model!r} after {failure}")
            if loop.time() >= deadline:
                raise DeadlineExceeded(f"deadline of {timeout:g} s passed before {model!r} was scored")
            if tried:
                self.telemetry.retried()
            tried.append(endpoint)
            cut = False  # the attempt's own deadline is shorter than the call's
            try:
                if self.settings.hedge and len(tried) == 1:
                    result, winner, hedged = await self._hedged(picker, endpoint, send, deadline, tried)
                    return result, winner, len(tried), hedged
                seconds = deadline - loop.time()
                if per_attempt is not None and per_attempt < seconds:
                    seconds, cut = per_attempt, True
                result = await self._attempt(endpoint, send, seconds)
                return result, endpoint, len(tried), False
            except grpc.aio.AioRpcError as err:
                code = err.code()
                busy = code in OVERLOADED
                failed += not busy
                # past the attempt's own deadline, with the call's still ahead: another endpoint may answer
                late = cut and code is grpc.StatusCode.DEADLINE_EXCEEDED
                if (code not in RETRYABLE and not late) or failed >= self.settings.max_attempts:
                    raise ScorerCallError(endpoint.address, code, err.details() or "") from None
                failure = f"{endpoint.address}: {code.name}: {err.details()}"
            picker = balancer.pickers.get(model, EMPTY)

    async def _busy_backoff(self, waits: int, deadline: float) -> bool:
        """Wait before asking a busy scorer again: `busy_backoff_s`, doubled after each such wait,
        jittered; False, at once, when the wait would not leave the call as long again to be scored or
        the budget of such calls is spent (under a lasting overload they would only add to it)."""
        backoff = self.settings.busy_backoff_s * 2**waits * (0.5 + random.random() / 2)
        if asyncio.get_running_loop().time() + 2 * backoff >= deadline or not self._busy_retries.spend():
            return False
        await asyncio.sleep(backoff)
        return True

    async def _hedged(
        self,
        picker: Picker,
        first: Endpoint,
        send: Callable[[Endpoint, float], Awaitable[T]],
        deadline: float,
        tried: list[Endpoint],
    ) -> tuple[T, Endpoint, bool]:
        """The first attempt, hedged on another endpoint if it is slower than the delay and budget allows."""

        def backup() -> Endpoint | None:
            other = picker.pick(tried) if self._hedges.spend() else None
            if other is not None:
                tried.append(other)
                self.telemetry.hedged()
            return other

        def attempt(endpoint: Endpoint, seconds: float) -> Coroutine[Any, Any, T]:
            return self._attempt(endpoint, send, seconds)

        delay = self.settings.hedge_delay_s or self._latency.value
        result, winner, hedged = await race(first, attempt, deadline, delay, backup)
        if winner is not first:
            self.telemetry.hedge_won()
        return result, winner, hedged

    async def _attempt(
        self, endpoint: Endpoint, send: Callable[[Endpoint, float], Awaitable[T]], seconds: float
    ) -> T:
        endpoint.in_flight += 1
        start = time.perf_counter()
        try:
            result = await send(endpoint, seconds)
        except grpc.aio.AioRpcError as err:
            elapsed = time.perf_counter() - start
            code = err.code()
            self.telemetry.attempt(endpoint.address, code.name, elapsed)
            if code in CALLER_ERRORS:
                endpoint.observe(elapsed)
            elif code in OVERLOADED:
                endpoint.observe_refusal(elapsed)
            elif endpoint.observe_failure(elapsed) and self._balancer:
                self._balancer.failed(endpoint)
            raise
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if endpoint.closed and task is not None and not task.cancelling():
                # Nobody cancelled this call: the endpoint left the pool and its channel closed under
                # it, so the scorer will not answer; the call goes to another one.
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE, _NO_METADATA, _NO_METADATA,
                    f"{endpoint.address} left the pool with the call in flight",
                ) from None  # fmt: skip
            # a hedge's loser (or a caller gone): it took at least this long, so it must not look fast
            endpoint.observe_unfinished(time.perf_counter() - start)
            raise
        finally:
            endpoint.in_flight -= 1
        elapsed = time.perf_counter() - start
        endpoint.observe(elapsed)
        self._latency.record(elapsed)
        self.telemetry.attempt(endpoint.address, "OK", elapsed)
        return result

    async def _wait_for_picker(self, balancer: Balancer, model: str, deadline: float) -> Picker:
        """The slow path of a call: no endpoint is ready for `model` yet, so wait within the deadline."""
        loop = asyncio.get_running_loop()
        ready = balancer.want(model)
        with contextlib.suppress(TimeoutError):  # no first list in time: said below, with the reason
            await asyncio.wait_for(balancer.membership_known(), max(0.0, deadline - loop.time()))
        while not ready.is_set():
            left = deadline - loop.time()
            if balancer.hosted_nowhere(model):
                raise ModelNotHosted(f"no scorer hosts {model!r} ({self.source.description})")
            if left <= 0:
                problem = f" ({self.source.problem})" if self.source.problem else ""
                raise Unavailable(
                    f"no scorer ready for {model!r} in time: {balancer.why_not_ready(model)}{problem}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), min(left, _READY_POLL_S))
        return balancer.pickers[model]

    # --- what happened ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Calls per endpoint (`pool`), `retries`, `hedges` and the rest of the pool's counts."""
        return self.telemetry.snapshot()

    def endpoints(self) -> list[str]:
        """Addresses in the pool now."""
        if self._balancer is None:
            return []
        return list(dict.fromkeys(e.address for e in self._balancer.endpoints.values()))


def with_trace_context(metadata: Metadata) -> Metadata:
    """`metadata` plus the W3C trace context of the current span, when there is one."""
    if not trace.get_current_span().get_span_context().is_valid:
        return metadata
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return (*metadata, *carrier.items())
