"""Live traffic through the extractor: the project's open-loop load client, a probe, and the shadow lag.

The load runs in a thread through `benchmarks.clients.run` (the native load generator where it is built,
else the Python one) and measures every call from its intended send time. Beside it a probe sends a few
`Evaluate` calls a second and reads each Decision: which version answered, and the latency of the moment,
which the load client only reports at its end. A third thread reads the shadow tier's lag and rows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.loadgen import LoadSpec, RunResult

EVALUATE = "/rtscore.v1.Extractor/Evaluate"
PROBE_PERIOD_S = 0.1
PROBE_WINDOW_S = 5.0


@dataclass
class ProbeCall:
    """One probe call: when (seconds since the load began), how long, which version, ok."""

    at_s: float
    latency_ms: float
    version: str
    ok: bool
    code: str = "OK"


@dataclass
class LoadThread:
    """The open-loop load in a thread of its own; counters as its client reports them."""

    target: str
    requests: Sequence[bytes]
    rate: float
    duration_s: float
    client: str
    result: RunResult | None = None
    error: BaseException | None = None
    ok: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    started_at: float | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin sending."""
        self._thread = threading.Thread(target=self._run, name="demo-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from benchmarks import clients

        spec = LoadSpec(
            target=self.target,
            method=EVALUATE,
            rate=self.rate,
            duration=self.duration_s,
            warmup=0.0,
            timeout=2.0,
            channels=2,
        )
        try:
            self.result = clients.run(spec, self.requests, progress=self._progress, client=self.client)  # type: ignore[arg-type]
        except BaseException as err:  # reported by the conductor, which owns the outcome
            self.error = err

    def _progress(self, elapsed: float, ok: int, failed: int) -> None:
        now = time.monotonic()
        if elapsed > 0 and self.started_at is None:
            self.started_at = now - elapsed
        self.elapsed_s, self.ok, self.failed = elapsed, ok, failed

    @property
    def alive(self) -> bool:
        """Still sending."""
        return self._thread is not None and self._thread.is_alive()

    def join(self) -> RunResult:
        """Wait for the end of the run; its result, or the error that ended it."""
        assert self._thread is not None
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass
class Probe:
    """A few Evaluate calls a second, each Decision read: the version serving now and recent latency."""

    target: str
    transactions: Sequence[bytes]
    origin: float
    calls: list[ProbeCall] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin probing."""
        self._thread = threading.Thread(target=self._run, name="demo-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing and wait for the last call."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        import grpc

        from protos.rtscore.v1 import extractor_pb2

        with grpc.insecure_channel(self.target) as channel:
            evaluate = channel.unary_unary(EVALUATE, response_deserializer=extractor_pb2.Decision.FromString)
            index = 0
            while not self._stop.wait(PROBE_PERIOD_S):
                request = self.transactions[index % len(self.transactions)]
                index += 1
                began = time.monotonic()
                code = "OK"
                try:
                    version = evaluate(request, timeout=2.0).version
                except grpc.RpcError as err:
                    version, code = "", err.code().name
                done = time.monotonic()
                at = began - self.origin
                self.calls.append(ProbeCall(at, (done - began) * 1e3, version, code == "OK", code))

    def recent(self, now_s: float) -> dict[str, Any]:
        """p50/p99 of the last few seconds' probe calls and the version that answered last."""
        window = [c for c in self.calls[-200:] if c.ok and c.at_s >= now_s - PROBE_WINDOW_S]
        if not window:
            return {"p50": None, "p99": None, "version": ""}
        latency = np.array([c.latency_ms for c in window])
        p50, p99 = np.percentile(latency, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "version": window[-1].version}

    def first_answer_from(self, version: int, after_s: float) -> float | None:
        """When the probe first saw `version` answer after `after_s` (seconds since the load began)."""
        for call in self.calls:
            if call.ok and call.at_s >= after_s and call.version == str(version):
                return call.at_s
        return None


@dataclass
class ShadowWatch:
    """The shadow tier's lag and stored rows per version, read every second or so."""

    settings: Any
    lag: int | None = None
    rows: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=600))

    def start(self) -> None:
        """Begin watching."""
        self._thread = threading.Thread(target=self._run, name="demo-shadow-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        from shadow.queries import status

        while not self._stop.is_set():
            try:
                report = asyncio.run(status(self.settings))
            except Exception:  # the topic may not exist before the first copy: try again shortly
                report = None
            if report is not None:
                self.lag = sum(int(p["lag"]) for p in report["partitions"])
                self.rows = {int(m["version"]): int(m["rows"]) for m in report["models"]}
                self.history.append((time.monotonic(), self.lag))
            self._stop.wait(1.0)
