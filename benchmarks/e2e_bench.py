"""`rtscore bench e2e`: load generator → extractor (velocity on Redis) → two scorers, beside the scorer
alone and the transport floor in the same run, and the highest rate at which p99 stays within 10 ms.

Two floors are measured at the same rate by the same client: `floor`, a bare grpc.aio server with the
scorer's fixed reply (one hop), and `e2e-floor` (`benchmarks.relay_floor`), a bare grpc.aio server
that per call pings Redis and calls `floor`, then sends a fixed Decision: the extractor's hops without
its work. The end-to-end run is read against `e2e-floor` (`e2e_over_floor` in the report). Where
./dev built it, `e2e-floor-native` makes the same hops from a native server (`benchmarks/goloadgen/relay`,
Go), so that the part of `e2e-floor` that is Python's own gRPC and Redis clients shows
(`e2e_over_native_floor`).

Each run also carries `server_cpu_ms`: the CPU per call of every tier it went through (the extractor
and its workers, the scorers, the relay, `floor`, and Redis by its own `INFO cpu`), which says where
a transaction's cost is paid, and `counts`: what the extractor counted during the run (velocity
fallbacks, retries, hedges, ejections; `benchmarks.tier_counts`) and the Redis calls each relay gave up.

The model is the seed-scale recipe on the extractor's own features: a forest trained on generated
transactions with 20% of training labels flipped (as `benchmarks/fixture.py` does), so that its trees
grow to the node count asked for (default 250 trees of ~96,000 nodes; `--quick`: 20 of ~2,000).
Everything built is cached under `.cache/fixtures/e2e-…` by its parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.e2e_figures import TALK, cpu_said, said, summarize
from benchmarks.e2e_rate import highest_rate
from benchmarks.fixture import DEFAULT_CACHE, frame_json
from benchmarks.loadgen import SCORE_METHOD, LoadSpec
from benchmarks.rounds import alternate, rounds_for, warmup_for
from benchmarks.server_cpu import cpu_per_call, tier_cpu
from benchmarks.tier_counts import counted_between, read_extractor_counts, redis_given_up
from rtscore.errors import InvalidArgument, Unavailable
from rtscore.localservices.processes import free_port, port_is_free


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `rtscore bench e2e`."""
    parser.add_argument("--quick", action="store_true", help="20 trees of ~2,000 nodes, 10 s runs")
    parser.add_argument("--trees", type=int, help="trees (default 250; 20 with --quick)")
    parser.add_argument("--nodes", type=int, help="nodes per tree (default ~96,000; 2,000 with --quick)")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop rate (default 500/s)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 60; 10 quick)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="split those seconds into this many rounds, the runs taking turns in a rotating order"
        " (default 6, 2 with --quick, fewer where that leaves under a second a round; 1: each run in one"
        " piece, one after the other)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds sent but not measured")
    parser.add_argument("--processes", type=int, default=1, help="load client processes")
    parser.add_argument(
        "--extractor-workers",
        type=int,
        default=1,
        help="extractor processes on its port (`extractor serve --workers`; default 1)",
    )
    parser.add_argument("--redis-url", help="Redis for velocity (default RTSCORE_REDIS_URL)")
    parser.add_argument("--max-rate", type=float, default=3000.0, help="highest rate tried in the search")
    parser.add_argument("--json", type=Path, help="write the report here, and a PNG beside it")


def _fixture(trees: int, nodes: int, cache: Path) -> dict[str, Any]:
    """Transactions, the trained bundle and a frame of their features; cached by parameters."""
    from extractor.generate import GENERATOR_VERSION, GenerateOptions, generate, write_jsonl
    from extractor.spec import load_spec
    from extractor.train import TrainOptions, feature_matrix, train

    folder = cache / f"e2e-g{GENERATOR_VERSION}-t{trees}-n{nodes}"
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        return meta
    folder.mkdir(parents=True, exist_ok=True)
    loaded = load_spec()
    training, traffic = folder / "train.jsonl", folder / "traffic.jsonl"
    # As in fixture.py: a few more rows than 0.3 nodes per row lets each tree reach its leaf cap.
    write_jsonl(generate(GenerateOptions(count=max(int(nodes * 3.6), 4_000), seed=1), loaded.spec), training)
    lines = generate(GenerateOptions(count=20_000, seed=2), loaded.spec)
    write_jsonl(lines, traffic)
    bundle = folder / "bundle.zip"
    report = train(training, loaded, bundle, TrainOptions(trees=trees, max_nodes=nodes, label_noise=0.2))
    x, _ = feature_matrix(lines[:2_000], loaded)
    frame = folder / "frame.json"
    frame.write_text(json.dumps(frame_json(x, loaded.spec.feature_names())))
    meta = {**report, "traffic": str(traffic), "frame": str(frame), "bundle": str(bundle)}
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def _score_requests(frame: Path) -> list[bytes]:
    """The ScoreRequests the extractor sends for these features (same frame layout, same select)."""
    from extractor.frames import RowEncoder
    from protos.rtscore.v1 import scorer_pb2

    obj = json.loads(frame.read_text())
    encoder = RowEncoder([f["name"] for f in obj["schema"]["fields"]], dense=True)  # as the extractor
    return [
        scorer_pb2.ScoreRequest(
            model="fraud", frame=encoder.frame(row), select=["probability"]
        ).SerializeToString()
        for row in obj["rows"]
    ]


def run_e2e(args: argparse.Namespace) -> int:
    """Run the whole comparison and print its table; the report goes to --json."""
    from benchmarks import clients, report, targets
    from extractor.bench import EVALUATE_METHOD, evaluate_requests

    quick = args.quick
    trees = args.trees or (20 if quick else 250)
    nodes = args.nodes or (2_000 if quick else 96_000)
    duration = args.duration or (10.0 if quick else 60.0)
    rounds = rounds_for(args.rounds, 2 if quick else 6, duration)
    redis_url = args.redis_url or os.environ.get("RTSCORE_REDIS_URL")
    if not redis_url:
        raise InvalidArgument("velocity runs on Redis: pass --redis-url or export RTSCORE_REDIS_URL")
    if not 1 <= args.extractor_workers <= 64:
        raise InvalidArgument(f"--extractor-workers must be 1 to 64, got {args.extractor_workers}")
    # SO_REUSEPORT spreads connections over the workers, so the extractor's callers open several each
    e2e_channels = 1 if args.extractor_workers == 1 else 4 * args.extractor_workers
    started = time.monotonic()
    print(f"e2e: model {trees} trees of ~{nodes} nodes (built once, cached)", flush=True)
    meta = _fixture(trees, nodes, DEFAULT_CACHE)
    bundle, frame = Path(meta["bundle"]), Path(meta["frame"])
    e2e_requests = evaluate_requests(Path(meta["traffic"]))
    score_requests = _score_requests(frame)

    tiers: dict[str, dict[str, Sequence[int]]] = {}  # by target: its tiers' server pids
    metrics_ports: list[int] = []  # the extractor's workers' metrics endpoints, chosen as it starts

    def counts_now() -> dict[str, float] | None:
        counts, why = read_extractor_counts(metrics_ports)
        if counts is None:  # the run is kept, without its counts
            print(f"warning: the extractor's counts could not be read: {why}", file=sys.stderr)
        return counts

    def spec_for(target: str, method: str, rate: float, seconds: float, warmup: float) -> LoadSpec:
        channels = e2e_channels if method == EVALUATE_METHOD else 1
        return LoadSpec(target=target, rate=rate, duration=seconds, warmup=warmup, method=method,
                        channels=channels)  # fmt: skip

    def measure(
        name: str, target: str, method: str, requests: list[bytes], rate: float, seconds: float
    ) -> Any:
        spec = spec_for(target, method, rate, seconds, args.warmup)
        redis = redis_url if method == EVALUATE_METHOD else None
        counting = target == extractor.target
        before = tier_cpu(tiers[target], redis)
        counts_before = counts_now() if counting else None
        result = clients.run(spec, requests, args.processes)
        per_call = cpu_per_call(before, tier_cpu(tiers[target], redis), result.calls_seen)
        extra: dict[str, Any] = {"server_cpu_ms": per_call}
        if counting:
            extra["counts"] = counted_between(counts_before, counts_now())
        record = report.run_record(name, result, **extra)
        print(report.run_table([record]), flush=True)
        print(f"server cpu ms/call: {cpu_said(per_call)}")
        if counting and extra["counts"] is not None:
            print("extractor counted: " + said(extra["counts"]))
        return record

    with ExitStack() as stack:
        servers = [targets.rtscore_scorer(bundle, "fraud", 1) for _ in range(2)]
        servers.append(targets.floor_server(bundle, frame, "fraud"))
        for server in servers:
            server.launch()
            stack.callback(server.stop)  # stopped however the run ends, even if another fails to start
        for server in servers:
            server.wait_ready()
        scorers, floor = servers[:2], servers[2]
        # free ports taken the moment the extractor starts, not minutes earlier before the fixture loads
        metrics_port = _free_ports(args.extractor_workers)  # the extractor's worker i on metrics_port + i
        metrics_ports.extend(metrics_port + i for i in range(args.extractor_workers))
        command = targets.rtscore_command(
            "extractor", "serve", "--port", "0", "--scorers", ",".join(s.target for s in scorers),
            "--model", "fraud", "--velocity", "redis", "--redis-url", redis_url, "--log-level", "WARNING",
            "--workers", str(args.extractor_workers), "--metrics-port", str(metrics_port),
        )  # fmt: skip
        extractor = targets.ServerProcess("extractor", command, 120.0)
        extractor.start()
        stack.callback(extractor.stop)
        request_file = stack.enter_context(tempfile.NamedTemporaryFile(prefix="rtscore-e2e-", suffix=".bin"))
        request_file.write(score_requests[0])
        request_file.flush()
        relay = targets.relay_floor(floor.target, redis_url, Path(request_file.name))
        relay.start()
        stack.callback(relay.stop)
        native_relay = _native_relay(stack, floor.target, redis_url, Path(request_file.name))
        scorer_pids = [_pid(s) for s in scorers]
        tiers[extractor.target] = {"extractor": [_pid(extractor)], "scorers": scorer_pids}
        tiers[relay.target] = {"relay": [_pid(relay)], "floor": [_pid(floor)]}
        if native_relay is not None:
            tiers[native_relay.target] = {"relay": [_pid(native_relay)], "floor": [_pid(floor)]}
        tiers[scorers[0].target] = {"scorer": scorer_pids[:1]}
        tiers[floor.target] = {"floor": [_pid(floor)]}
        plan = [("e2e", extractor.target, EVALUATE_METHOD, e2e_requests),
                ("e2e-floor", relay.target, EVALUATE_METHOD, e2e_requests),
                ("scorer", scorers[0].target, SCORE_METHOD, score_requests),
                ("floor", floor.target, SCORE_METHOD, score_requests)]  # fmt: skip
        if native_relay is not None:  # after the four runs every report has, in their order
            plan.append(("e2e-floor-native", native_relay.target, EVALUATE_METHOD, e2e_requests))
        by_name = {entry[0]: entry for entry in plan}

        def load(name: str, round_: int) -> Any:
            _, target, method, requests = by_name[name]
            warmup = warmup_for(round_, args.warmup)
            spec = spec_for(target, method, args.rate, duration / rounds, warmup)
            result = clients.run(spec, requests, args.processes)
            summary = result.recorder.summary()
            took = f"p50 {summary.p50:.2f} / p99 {summary.p99:.2f} ms" if summary else "no call answered"
            print(f"{name}, round {round_ + 1} of {rounds}: {took}", flush=True)
            return result

        def cpu(name: str) -> Any:
            _, target, method, _ = by_name[name]
            return tier_cpu(tiers[target], redis_url if method == EVALUATE_METHOD else None)

        # the runs take turns, so the host's drift over minutes falls on each alike; only `e2e` calls
        # the extractor, so what it counted over all the rounds is that run's
        counts_before = counts_now()
        speeds: list[float] = []
        measured = alternate(list(by_name), rounds, load, cpu, speeds=speeds)
        e2e_counts = counted_between(counts_before, counts_now())
        runs = []
        for name, seen in measured.items():
            extra: dict[str, Any] = {"server_cpu_ms": seen.cpu_ms_per_call, "rounds_ms": seen.by_round}
            if name == "e2e":
                extra["counts"] = e2e_counts
            runs.append(report.run_record(name, seen.result, **extra))
        runs.sort(key=lambda run: list(by_name).index(run["name"]))
        print(report.run_table(runs), flush=True)
        for run in runs:
            print(f"{run['name']} server cpu ms/call: {cpu_said(run['server_cpu_ms'])}")
        highest = highest_rate(measure, extractor.target, e2e_requests, args, duration, runs[0])
        relays = {"e2e-floor": relay, "e2e-floor-native": native_relay}
    for run in runs:  # the relays are stopped now, and have said how many Redis calls they gave up
        relay_process = relays.get(run["name"])
        if relay_process is not None:
            run["counts"] = {"redis_given_up": redis_given_up(relay_process.output)}
    figures = summarize(runs, speeds, highest)
    print(f"e2e done in {time.monotonic() - started:.0f}s")
    if args.json:
        full = report.build_report(
            runs, fixture=meta, talk=TALK, highest_rate_p99_le_10ms=highest, **figures, rounds=rounds,
            python_loop_ms_by_round=speeds, extractor_workers=args.extractor_workers,
        )  # fmt: skip
        png = report.write_report(full, args.json)
        print(f"wrote {args.json} and {png}")
    return 0


def _native_relay(stack: ExitStack, floor: str, redis_url: str, request: Path) -> Any:
    """The started `e2e-floor-native` target, stopped with `stack`; None where ./dev did not build it."""
    from benchmarks import targets
    from benchmarks.native import relay_binary
    from benchmarks.relay_floor import DECISION

    binary = relay_binary()
    if binary is None:
        print("e2e: no native relay (rtscore-relay; ./dev builds it with Go): no e2e-floor-native run")
        return None
    decision = stack.enter_context(
        tempfile.NamedTemporaryFile(prefix="rtscore-decision-", suffix=".bin")  # noqa: SIM115 (closed by stack)
    )
    decision.write(DECISION)
    decision.flush()
    relay = targets.native_relay(floor, redis_url, request, Path(decision.name), binary)
    relay.start()
    stack.callback(relay.stop)
    return relay


def _free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on loopback now (the extractor's metrics endpoints)."""
    for _ in range(50):
        base = free_port()
        if base + count <= 65536 and all(port_is_free(port) for port in range(base + 1, base + count)):
            return base
    raise Unavailable(f"no {count} consecutive free ports on 127.0.0.1")


def _pid(server: Any) -> int:
    assert server.process is not None, f"{server.name} was not started"
    return int(server.process.pid)
