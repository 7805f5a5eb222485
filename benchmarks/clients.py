"""Which load client runs a spec: the native one (Go, the default where it is built) or the Python one.

`run(spec, requests)` is the one entry point: `spec.method` names any unary method (the scorer's Score,
the extractor's Evaluate, ...), `requests` are that method's request messages serialized once beforehand.
The Python client runs in this process, or in several spawned processes that start together.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.sharedctypes
import queue
import resource
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, Literal

import uvloop

from benchmarks import native
from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult, run_load
from rtscore.errors import InvalidArgument, RtscoreError, Unavailable

# Spawned interpreters need this long to import grpc and numpy before the common start time.
_STARTUP_S = 3.0

Client = Literal["go", "python"]
CLIENTS: tuple[Client, ...] = ("go", "python")
Progress = Callable[[float, int, int], None]


def default_client() -> Client:
    """The native client where its binary is built, else the Python one."""
    return "go" if native.binary() is not None else "python"


def expected_seconds(spec: LoadSpec) -> float:
    """How long a run should take including warm-up (0 when it depends on the server's speed)."""
    return spec.warmup + spec.nominal_window


def run(
    spec: LoadSpec,
    requests: Sequence[bytes],
    processes: int = 1,
    progress: Progress | None = None,
    client: Client | None = None,
) -> RunResult:
    """Run `spec` from `processes` client processes of `client` (default: `default_client()`).

    `progress(elapsed, ok, failed)` is called a few times a second while the run is under way.
    """
    spec.check()
    if processes < 1:
        raise InvalidArgument(f"processes must be at least 1, got {processes}")
    if spec.mode == "closed" and spec.concurrency < processes:
        raise InvalidArgument(
            f"closed loop: {processes} processes need at least as many callers (--concurrency)"
        )
    chosen = client or default_client()
    if chosen not in CLIENTS:
        raise InvalidArgument(f"client must be one of {', '.join(CLIENTS)}, got {chosen!r}")
    if chosen == "go":
        return native.run(spec, requests, processes, progress)
    if processes == 1:
        return uvloop.run(_in_process(spec, requests, progress))
    return _in_processes(spec, requests, processes, progress)


def _cpu_seconds() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _with_cpu(result: RunResult, before: tuple[float, float], calls: int) -> RunResult:
    """`result` with this process's CPU time since `before` spread over `calls` (warm-up included)."""
    user, system = (after - was for after, was in zip(_cpu_seconds(), before, strict=True))
    result.client_cpu = {
        "user_s": round(user, 6),
        "system_s": round(system, 6),
        "calls": calls,
        "ms_per_call": round(1e3 * (user + system) / max(calls, 1), 3),
    }
    return result


async def _in_process(spec: LoadSpec, requests: Sequence[bytes], progress: Progress | None) -> RunResult:
    counters = [0, 0]
    started = time.perf_counter()
    before = _cpu_seconds()
    load = asyncio.create_task(run_load(spec, requests, counters))
    while progress is not None and not load.done():
        progress(time.perf_counter() - started, counters[0], counters[1])
        await asyncio.wait({load}, timeout=0.25)
    return _with_cpu(await load, before, counters[0] + counters[1])


def _child(spec: LoadSpec, requests: Sequence[bytes], start_at: float, counters: Any, out: Any) -> None:
    """Body of one client process: run its share, send back the recorder or the error."""
    try:
        before = _cpu_seconds()
        result = uvloop.run(run_load(spec, requests, counters, start_at))
    except RtscoreError as err:
        out.put(("error", str(err)))
        return
    _with_cpu(result, before, counters[0] + counters[1])
    wire = result.recorder.to_wire()
    sent, window, lag, late = result.sent, result.window_s, result.send_lag_ms, result.late_sends
    out.put(("ok", wire, sent, window, lag, late, result.client_cpu))


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
    errors = [r[1] for r in replies if r[0] == "error"]
    if errors:
        raise Unavailable(errors[0])
    results = [
        RunResult(spec, LatencyRecorder.from_wire(wire), sent, window, lag, late_sends=late, client_cpu=cpu)
        for _, wire, sent, window, lag, late, cpu in replies
    ]
    return merge(spec, results, processes)


def merge(spec: LoadSpec, results: Sequence[RunResult], processes: int) -> RunResult:
    """The runs of several client processes started together as one run of `spec`."""
    recorder = LatencyRecorder()
    sent, window, lag = 0, 0.0, {"p50": 0.0, "p99": 0.0, "max": 0.0}
    for result in results:
        recorder.merge(result.recorder)
        sent += result.sent
        window = max(window, result.window_s)
        # The worst client's lag is the one that says whether the clients kept up.
        lag = {k: max(lag[k], result.send_lag_ms[k]) for k in lag}
    return RunResult(
        spec,
        recorder,
        sent,
        window,
        lag,
        processes,
        late_sends=sum(r.late_sends for r in results),
        client_cpu=total_cpu(results),
        client=results[0].client if results else "python",
    )


def total_cpu(results: Sequence[RunResult]) -> dict[str, float] | None:
    """The client CPU of several runs (processes, rounds) added up, per call over all their calls."""
    measured = [r.client_cpu for r in results if r.client_cpu]
    if not measured:
        return None
    cpu = {key: sum(m.get(key, 0.0) for m in measured) for key in ("user_s", "system_s", "calls")}
    cpu_ms = 1e3 * (cpu["user_s"] + cpu["system_s"]) / max(cpu["calls"], 1)
    return {**cpu, "ms_per_call": round(cpu_ms, 3)}


def add_client_option(parser: Any) -> None:
    """The `--client go|python` option of the commands that generate load."""
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        help=f"load client: go (the native one) or python; default here: {default_client()}",
    )
