"""`rtscore bench pool`: the scorer pool against C-core's round_robin + healthCheckConfig, same scorers,
same run. Tail latency while one scorer stalls periodically (with and without hedging), and the highest
rate each client holds with p99 <= the objective (with and without micro-batching)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from benchmarks import frames
from benchmarks.loadgen import SCORE_METHOD, LoadSpec, RunResult, _Calls
from benchmarks.pool_load import PoolMethod
from benchmarks.report import machine_info
from benchmarks.targets import ServerProcess, rtscore_scorer
from protos.rtscore.v1 import scorer_pb2
from rtscore.errors import InvalidArgument
from scorer.client import PoolSettings, ScorerPool, static_endpoints

_FIXTURES = Path(
    os.environ.get("RTSCORE_FIXTURES", Path(__file__).resolve().parents[2] / "shared/fixtures/mleap")
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `rtscore bench pool`."""
    parser.add_argument(
        "--bundle", type=Path, default=_FIXTURES / "demo.zip", help="bundle every scorer hosts"
    )
    parser.add_argument("--frame", type=Path, default=_FIXTURES / "frame.demo.json", help="rows to send")
    parser.add_argument("--model", default="demo", help="name the scorers host the bundle as")
    parser.add_argument("--scorers", type=int, default=3, help="scorer processes")
    parser.add_argument("--rate", type=float, default=300.0, help="tail runs: calls per second")
    parser.add_argument("--duration", type=float, default=10.0, help="tail runs: measured seconds each")
    parser.add_argument("--stall-ms", type=float, default=50.0, help="tail runs: one scorer stops this long")
    parser.add_argument("--stall-every", type=float, default=1.0, help="tail runs: seconds between stalls")
    parser.add_argument("--objective-ms", type=float, default=10.0, help="p99 the rate search must hold")
    parser.add_argument("--step-duration", type=float, default=3.0, help="rate search: seconds per step")
    parser.add_argument("--start-rate", type=float, default=200.0, help="rate search: first rate")
    parser.add_argument("--max-rate", type=float, default=20000.0, help="rate search: give up above this")
    parser.add_argument(
        "--hedge-quantile", type=float, default=0.95, help="pool+hedge: hedge after this quantile"
    )
    parser.add_argument("--skip", choices=("tail", "throughput"), help="leave out one part")
    parser.add_argument(
        "--tail-clients", default="round_robin,pool,pool+hedge", help="tail runs: clients, in this order"
    )
    parser.add_argument(
        "--throughput-clients", default="round_robin,pool,pool+batch", help="rate search: clients, in order"
    )
    parser.add_argument("--json", type=Path, help="write the results here")


class Stalls:
    """Stops a process for `stall_s` every `every_s` (SIGSTOP/SIGCONT), like a GC pause or a noisy host."""

    def __init__(self, pid: int, stall_s: float, every_s: float) -> None:
        self.pid, self.stall_s, self.every_s = pid, stall_s, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rtscore-bench-stalls")

    def _run(self) -> None:
        while not self._stop.wait(self.every_s - self.stall_s):
            os.kill(self.pid, signal.SIGSTOP)
            time.sleep(self.stall_s)
            os.kill(self.pid, signal.SIGCONT)

    def __enter__(self) -> Stalls:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        os.kill(self.pid, signal.SIGCONT)


def round_robin_options(model: str) -> list[tuple[str, Any]]:
    """C-core's own balancing: round_robin over every address, client-side health on the model's name
    (gRFC A17) and retries on UNAVAILABLE (gRFC A6)."""
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": model},
        "methodConfig": [{
            "name": [{"service": "rtscore.v1.Scorer"}],
            "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.001s", "maxBackoff": "0.01s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
        }],
    }  # fmt: skip
    return [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1)]


async def measure(
    client: str,
    targets: Sequence[str],
    model: str,
    requests: list[bytes],
    spec: LoadSpec,
    hedge_quantile: float = 0.95,
) -> tuple[RunResult, dict[str, Any]]:
    """One open-loop run of `spec` through `client`; the result and the pool's counts (if a pool)."""
    if client == "round_robin":
        address = "ipv4:" + ",".join(targets)
        async with grpc.aio.insecure_channel(address, options=round_robin_options(model)) as channel:
            await channel.channel_ready()
            run = _Calls(spec, [channel.unary_unary(SCORE_METHOD)], requests, [0, 0])
            return await run.open_loop(), {}
    settings = PoolSettings(
        default_timeout_s=spec.timeout,
        hedge=client == "pool+hedge",
        hedge_quantile=hedge_quantile,
        batch=client == "pool+batch",
    )
    async with ScorerPool(static_endpoints(targets), settings) as pool:
        await pool.wait_ready(model, timeout=10.0)
        run = _Calls(spec, [PoolMethod(pool, requests)], requests, [0, 0])
        return await run.open_loop(), pool.stats()


def summary(result: RunResult, stats: dict[str, Any]) -> dict[str, Any]:
    """The figures a reader compares: rate, errors, percentiles, pool counts."""
    latency = result.recorder.summary()
    return {
        "offered_rate": result.offered_rate,
        "achieved_rate": round(result.achieved_rate, 1),
        "requests": result.recorder.requests,
        "errors": dict(result.recorder.errors),
        "latency_ms": latency.as_dict() if latency else None,
        "short": result.short,
        "send_lag_ms": result.send_lag_ms,
        **{
            k: stats[k]
            for k in ("pool", "retries", "hedges", "hedge_wins", "batches", "batched_rows")
            if k in stats
        },
    }


def holds(record: dict[str, Any], objective_ms: float) -> bool:
    """True when a step met the objective: no errors, the client kept up, p99 within it."""
    latency = record["latency_ms"]
    return (
        not record["errors"]
        and not record["short"]
        and latency is not None
        and latency["p99"] <= objective_ms
    )


@contextlib.contextmanager
def scorer_processes(args: argparse.Namespace) -> Iterator[list[ServerProcess]]:
    """`args.scorers` scorers on free ports, booted together, one scoring thread each."""
    servers = [
        rtscore_scorer(args.bundle, args.model, 1, ["--scoring-threads", "1"]) for _ in range(args.scorers)
    ]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print (and optionally write) its figures."""
    import uvloop

    if args.scorers < 2:
        raise InvalidArgument("the pool benchmark needs at least 2 scorers")
    requests = frames.score_requests(frames.load_leap_frame(args.frame), args.model, 1, str(args.frame))
    scorer_pb2.ScoreRequest.FromString(requests[0])  # the frame file made sense
    results: dict[str, Any] = {
        "scorers": args.scorers,
        "bundle": str(args.bundle),
        "load_average": os.getloadavg(),
        "machine": machine_info(),
    }
    with scorer_processes(args) as servers:
        targets = [s.target for s in servers]
        if args.skip != "tail":
            results["tail"] = uvloop.run(_tail(args, servers, targets, requests))
        if args.skip != "throughput":
            results["throughput"] = uvloop.run(_throughput(args, targets, requests))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


async def _tail(
    args: argparse.Namespace, servers: list[ServerProcess], targets: list[str], requests: list[bytes]
) -> dict[str, Any]:
    spec = LoadSpec(target=",".join(targets), rate=args.rate, duration=args.duration, warmup=1.0, timeout=2.0)
    stalled = servers[-1].process
    assert stalled is not None
    out: dict[str, Any] = {"rate": args.rate, "stall_ms": args.stall_ms, "stall_every_s": args.stall_every,
                           "stalled": servers[-1].target, "hedge_quantile": args.hedge_quantile}  # fmt: skip
    for client in _clients(args.tail_clients):
        with Stalls(stalled.pid, args.stall_ms / 1e3, args.stall_every):
            result, stats = await measure(client, targets, args.model, requests, spec, args.hedge_quantile)
        out[client] = summary(result, stats)
        print(f"tail {client}: {_brief(out[client])}", flush=True)
    return out


async def _throughput(args: argparse.Namespace, targets: list[str], requests: list[bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {"objective_p99_ms": args.objective_ms}
    for client in _clients(args.throughput_clients):
        steps, best, rate = [], None, args.start_rate
        while rate <= args.max_rate:
            spec = LoadSpec(
                target=",".join(targets), rate=rate, duration=args.step_duration, warmup=1.0, timeout=2.0
            )
            for _ in range(2):  # a step that misses is run once more: other work shares the host
                result, stats = await measure(client, targets, args.model, requests, spec)
                record = summary(result, stats)
                steps.append(record)
                print(f"throughput {client} @ {rate:.0f}/s: {_brief(record)}", flush=True)
                if holds(record, args.objective_ms):
                    break
            if not holds(record, args.objective_ms):
                break
            best = record["achieved_rate"]
            rate *= 1.4
        out[client] = {"max_rate_at_objective": best, "steps": steps}
    return out


def _clients(names: str) -> list[str]:
    known = ("round_robin", "pool", "pool+hedge", "pool+batch")
    clients = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [c for c in clients if c not in known]
    if unknown or not clients:
        raise InvalidArgument(f"clients must be among {', '.join(known)}, got {names!r}")
    return clients


def _brief(record: dict[str, Any]) -> str:
    latency = record["latency_ms"] or {}
    extra = {k: record[k] for k in ("retries", "hedges", "hedge_wins", "batches") if k in record}
    return (
        f"achieved {record['achieved_rate']}/s errors {sum(record['errors'].values())} "
        f"p50 {latency.get('p50')} p99 {latency.get('p99')} p99.9 {latency.get('p999')} ms {extra}"
    )
