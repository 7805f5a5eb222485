"""The Python load generator: open-loop arrivals (no coordinated omission) or closed-loop callers, grpc.aio.

`benchmarks/native.py` drives the native one (Go) with the same `LoadSpec`, into the same `RunResult`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, MutableSequence, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import grpc
import numpy as np

from benchmarks.histogram import LatencyRecorder
from rtscore.errors import InvalidArgument, Unavailable
from rtscore.tls import channel_credentials, wants_tls

SCORE_METHOD = "/rtscore.v1.Scorer/Score"

# asyncio's timers wake up to a millisecond late (epoll waits in whole milliseconds). That much lateness
# is the client's own, so it is not charged to the server; any later send is (it is a queue the client
# built because it could not keep up), which is what keeps coordinated omission out of the numbers.
TIMER_SLACK_S = 0.002

# The achieved rate may trail the offered one by this fraction before the run is called short.
SHORTFALL_TOLERANCE = 0.03
# A client whose sends leave later than this at p99 is building its own queue: its numbers are suspect.
SEND_LAG_LIMIT_MS = 10.0

Mode = Literal["open", "closed"]
Arrivals = Literal["poisson", "constant"]
Call = Callable[[bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how fast and for how long."""

    target: str
    mode: Mode = "open"
    rate: float = 100.0
    arrivals: Arrivals = "poisson"
    duration: float | None = 10.0
    count: int | None = None
    warmup: float = 1.0
    concurrency: int = 1
    channels: int = 1
    timeout: float = 10.0
    method: str = SCORE_METHOD
    seed: int = 0
    max_in_flight: int = 10_000
    # TLS when any is given: the servers' CA (None: the system roots), and a client certificate + key
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def check(self) -> None:
        """Raise InvalidArgument naming the first setting that cannot work."""
        if self.mode not in ("open", "closed"):
            raise InvalidArgument(f"mode must be open or closed, got {self.mode!r}")
        if self.arrivals not in ("poisson", "constant"):
            raise InvalidArgument(f"arrivals must be poisson or constant, got {self.arrivals!r}")
        if self.mode == "open" and not (self.rate > 0 and math.isfinite(self.rate)):
            raise InvalidArgument(f"rate must be a positive number of requests per second, got {self.rate}")
        if (self.duration is None) == (self.count is None):
            raise InvalidArgument("give exactly one of duration and count")
        if self.duration is not None and not self.duration > 0:
            raise InvalidArgument(f"duration must be positive, got {self.duration}")
        if self.count is not None and self.count < 1:
            raise InvalidArgument(f"count must be at least 1, got {self.count}")
        if self.warmup < 0 or self.timeout <= 0:
            raise InvalidArgument("warmup must be >= 0 and timeout > 0 seconds")
        if self.concurrency < 1 or self.max_in_flight < 1 or self.channels < 1:
            raise InvalidArgument("concurrency, channels and max_in_flight must be at least 1")
        if (self.cert is None) != (self.key is None):
            raise InvalidArgument("a client certificate needs its key, and a key its certificate")

    @property
    def tls(self) -> bool:
        """Whether calls go over TLS."""
        return wants_tls(self.ca, self.cert, self.key)

    def share(self, index: int, parts: int) -> LoadSpec:
        """This spec's part `index` of `parts` client processes: rate, callers and count split evenly."""
        count = None if self.count is None else self.count // parts + (index < self.count % parts)
        callers = self.concurrency // parts + (index < self.concurrency % parts)
        return replace(
            self, rate=self.rate / parts, count=count, concurrency=max(callers, 1), seed=self.seed + index
        )

    @property
    def nominal_window(self) -> float:
        """Seconds the measured part should take at the offered rate."""
        if self.duration is not None:
            return self.duration
        assert self.count is not None
        return self.count / self.rate if self.mode == "open" else 0.0


@dataclass
class RunResult:
    """One run's recorder plus what the client itself managed to do."""

    spec: LoadSpec
    recorder: LatencyRecorder
    sent: int
    window_s: float
    send_lag_ms: dict[str, float]
    processes: int = 1
    # sends that left later than the client's timer slack (charged to the latency, never hidden)
    late_sends: int = 0
    # the client's own CPU: user_s, system_s, calls (warm-up included), ms_per_call
    client_cpu: dict[str, float] | None = None
    client: str = "python"

    @property
    def achieved_rate(self) -> float:
        """Measured requests per second actually sent (open) or completed (closed)."""
        return self.sent / self.window_s if self.window_s > 0 else 0.0

    @property
    def calls_seen(self) -> int:
        """Calls the server saw from the client's start, warm-up included: the client's own count
        where it kept one, else the measured calls plus the warm-up's at the achieved rate."""
        if self.client_cpu and "calls" in self.client_cpu:
            return int(self.client_cpu["calls"])
        return int(self.recorder.requests + round(self.achieved_rate * self.spec.warmup))

    @property
    def offered_rate(self) -> float | None:
        """The rate asked for; None for closed loop."""
        return self.spec.rate if self.spec.mode == "open" else None

    @property
    def short(self) -> bool:
        """True when an open-loop client could not send at the rate it was asked for."""
        if self.spec.mode != "open" or self.spec.nominal_window <= 0:
            return False
        offered = self.sent / self.spec.nominal_window
        return self.achieved_rate < offered * (1 - SHORTFALL_TOLERANCE)

    @property
    def late(self) -> bool:
        """True when sends left late often enough (p99) that the client's own delays colour the tail."""
        return self.send_lag_ms.get("p99", 0.0) > SEND_LAG_LIMIT_MS


def lag_summary(lags_s: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of how late sends left, in milliseconds."""
    if not lags_s:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    p50, p99 = np.percentile(np.asarray(lags_s) * 1e3, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(max(lags_s) * 1e3, 3)}


async def run_load(
    spec: LoadSpec,
    requests: Sequence[bytes],
    counters: MutableSequence[int] | None = None,
    start_at: float | None = None,
) -> RunResult:
    """Run one load against `spec.target`; `counters[0]`/`[1]` count ok/failed calls as they finish.

    `start_at` (a `time.time()` value) lets several client processes begin together.
    """
    spec.check()
    if not requests:
        raise InvalidArgument("no requests to send")
    counters = counters if counters is not None else [0, 0]
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    if spec.channels > 1:
        # a connection per channel: SO_REUSEPORT spreads connections, not calls, over server workers
        options.append(("grpc.use_local_subchannel_pool", 1))
    credentials = channel_credentials(spec.ca, spec.cert, spec.key) if spec.tls else None

    def channel() -> grpc.aio.Channel:
        if credentials is None:
            return grpc.aio.insecure_channel(spec.target, options=options)
        return grpc.aio.secure_channel(spec.target, credentials, options=options)

    async with contextlib.AsyncExitStack() as stack:
        channels = [await stack.enter_async_context(channel()) for _ in range(spec.channels)]
        try:
            ready = (channel.channel_ready() for channel in channels)
            await asyncio.wait_for(asyncio.gather(*ready), timeout=spec.timeout)
        except TimeoutError as err:
            raise Unavailable(f"{spec.target}: no gRPC server answered within {spec.timeout:g} s") from err
        methods = [channel.unary_unary(spec.method) for channel in channels]
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.time()))
        calls = _Calls(spec, methods, requests, counters)
        if spec.mode == "open":
            return await calls.open_loop()
        return await calls.closed_loop()


class _Calls:
    """The shared state of one run: its clock, recorder and counters."""

    def __init__(
        self,
        spec: LoadSpec,
        methods: Sequence[grpc.aio.UnaryUnaryMultiCallable],
        requests: Sequence[bytes],
        counters: MutableSequence[int],
    ) -> None:
        self.spec = spec
        self.methods = methods
        self.requests = requests
        self.counters = counters
        self.recorder = LatencyRecorder()
        self.t0 = time.perf_counter()
        self.measure_start = self.t0 + spec.warmup
        self.end = math.inf if spec.duration is None else self.measure_start + spec.duration

    async def _one(self, index: int, start: float, measured: bool) -> None:
        """Send request `index`; its latency runs from `start` to the response."""
        request = self.requests[index % len(self.requests)]
        code = None
        try:
            await self.methods[index % len(self.methods)](request, timeout=self.spec.timeout)
        except grpc.aio.AioRpcError as err:
            code = err.code().name
        latency = time.perf_counter() - start
        if code is None:
            self.counters[0] += 1
        else:
            self.counters[1] += 1
        if not measured:
            return
        if code is None:
            self.recorder.record(start - self.measure_start, latency)
        else:
            self.recorder.record_error(start - self.measure_start, latency, code)

    async def open_loop(self) -> RunResult:
        """Send on a fixed schedule whatever the server does; latency counts from the scheduled time."""
        spec = self.spec
        rng = np.random.default_rng(spec.seed)
        gap = 1.0 / spec.rate
        in_flight = asyncio.Semaphore(spec.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        lags: list[float] = []
        intended, index, measured = self.t0, 0, 0
        last_send = self.measure_start
        while True:
            intended += float(rng.exponential(gap)) if spec.arrivals == "poisson" else gap
            is_measured = intended >= self.measure_start
            if intended >= self.end or (spec.count is not None and measured >= spec.count):
                break
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await in_flight.acquire()
            now = time.perf_counter()
            lag = max(0.0, now - intended)
            if is_measured:
                measured += 1
                lags.append(lag)
                last_send = now
            task = asyncio.create_task(self._one(index, intended + min(lag, TIMER_SLACK_S), is_measured))
            task.add_done_callback(lambda t: in_flight.release())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.gather(*tasks)
        window = max(spec.nominal_window, last_send - self.measure_start)
        late = sum(1 for lag in lags if lag > TIMER_SLACK_S)
        return RunResult(spec, self.recorder, measured, window, lag_summary(lags), late_sends=late)

    async def closed_loop(self) -> RunResult:
        """`concurrency` callers, each sending its next request when the previous one returns."""
        spec = self.spec
        budget = [spec.count if spec.count is not None else -1]
        finished = [self.measure_start]

        async def caller(offset: int) -> None:
            index = offset
            while True:
                start = time.perf_counter()
                if start >= self.end:
                    return
                measured = start >= self.measure_start
                if measured:
                    if budget[0] == 0:
                        return
                    budget[0] -= 1
                await self._one(index, start, measured)
                if measured:
                    finished[0] = max(finished[0], time.perf_counter())
                index += spec.concurrency

        await asyncio.gather(*(caller(i) for i in range(spec.concurrency)))
        window = finished[0] - self.measure_start
        if spec.duration is not None:
            window = max(window, spec.duration)
        return RunResult(spec, self.recorder, self.recorder.requests, window, lag_summary([]))
