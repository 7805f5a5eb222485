"""Several load-generator processes started together, their recorders merged into one run."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.sharedctypes
import queue
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import uvloop

from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult, run_load
from rtscore.errors import InvalidArgument, RtscoreError, Unavailable

# Spawned interpreters need this long to import grpc and numpy before the common start time.
_STARTUP_S = 3.0

Progress = Callable[[float, int, int], None]


def expected_seconds(spec: LoadSpec) -> float:
    """How long a run should take including warm-up (0 when it depends on the server's speed)."""
    return spec.warmup + spec.nominal_window


def run(
    spec: LoadSpec, requests: Sequence[bytes], processes: int = 1, progress: Progress | None = None
) -> RunResult:
    """Run `spec` from `processes` client processes (1: in this process); `progress(elapsed, ok, failed)`."""
    spec.check()
    if processes < 1:
        raise InvalidArgument(f"processes must be at least 1, got {processes}")
    if spec.mode == "closed" and spec.concurrency < processes:
        raise InvalidArgument(
            f"closed loop: {processes} processes need at least as many callers (--concurrency)"
        )
    if processes == 1:
        return uvloop.run(_in_process(spec, requests, progress))
    return _in_processes(spec, requests, processes, progress)


async def _in_process(spec: LoadSpec, requests: Sequence[bytes], progress: Progress | None) -> RunResult:
    counters = [0, 0]
    started = time.perf_counter()
    load = asyncio.create_task(run_load(spec, requests, counters))
    while progress is not None and not load.done():
        progress(time.perf_counter() - started, counters[0], counters[1])
        await asyncio.wait({load}, timeout=0.25)
    return await load


def _child(spec: LoadSpec, requests: Sequence[bytes], start_at: float, counters: Any, out: Any) -> None:
    """Body of one client process: run its share, send back the recorder or the error."""
    try:
        result = uvloop.run(run_load(spec, requests, counters, start_at))
    except RtscoreError as err:
        out.put(("error", str(err)))
        return
    wire = result.recorder.to_wire()
    out.put(("ok", wire, result.sent, result.window_s, result.send_lag_ms))


def _in_processes(
    spec: LoadSpec, requests: Sequence[bytes], processes: int, progress: Progress | None
) -> RunResult:
    ctx = multiprocessing.get_context("spawn")  # grpc does not survive fork
    out = ctx.Queue()
    start_at = time.time() + _STARTUP_S
    shares = [multiprocessing.sharedctypes.RawArray("q", 2) for _ in range(processes)]
    children: list[BaseProcess] = []
    for i in range(processes):
        child = ctx.Process(
            target=_child, args=(spec.share(i, processes), requests, start_at, shares[i], out)
        )
        child.start()
        children.append(child)
    replies: list[tuple[Any, ...]] = []
    try:
        while len(replies) < processes:
            try:
                replies.append(out.get(timeout=0.25))
            except queue.Empty:
                if not any(c.is_alive() for c in children) and out.empty():
                    raise Unavailable("a client process died without a result") from None
            if progress is not None:
                elapsed = max(0.0, time.time() - start_at)
                progress(elapsed, sum(s[0] for s in shares), sum(s[1] for s in shares))
    finally:
        for process in children:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    return _merge(spec, replies, processes)


def _merge(spec: LoadSpec, replies: list[tuple[Any, ...]], processes: int) -> RunResult:
    errors = [r[1] for r in replies if r[0] == "error"]
    if errors:
        raise Unavailable(errors[0])
    recorder = LatencyRecorder()
    sent, window, lag = 0, 0.0, {"p50": 0.0, "p99": 0.0, "max": 0.0}
    for _, wire, child_sent, child_window, child_lag in replies:
        recorder.merge(LatencyRecorder.from_wire(wire))
        sent += child_sent
        window = max(window, child_window)
        # The worst client's lag is the one that says whether the clients kept up.
        lag = {k: max(lag[k], child_lag[k]) for k in lag}
    return RunResult(spec, recorder, sent, window, lag, processes)
