"""`rtscore bench`: load a gRPC target, compare targets side by side, serve the sklearn pickle."""

from __future__ import annotations

import argparse
import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from rtscore.errors import InvalidArgument


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `bench` group and its commands."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="load one gRPC target and report its latency distribution")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", help="HOST:PORT of a server implementing rtscore.v1.Scorer")
    where.add_argument("--scorers", metavar="HOST:PORT,…", help="load a pool of scorers through ScorerPool")
    where.add_argument("--extractor", metavar="HOST:PORT", help="load an extractor's Evaluate")
    run.add_argument(
        "--transactions",
        type=Path,
        help="with --extractor: JSONL of transactions (rtscore extractor generate)",
    )
    run.add_argument("--hedge", action="store_true", help="with --scorers: hedge slow calls (capped at 5%%)")
    run.add_argument(
        "--micro-batch", action="store_true", help="with --scorers: join one-row calls arriving within 200 µs"
    )
    run.add_argument("--model", help="model name sent in every ScoreRequest (not with --extractor)")
    run.add_argument("--frame", type=Path, help="MLeap JSON LeapFrame with the input rows (else: GetModel)")
    run.add_argument(
        "--form",
        choices=("dense", "columns"),
        help="request frames: dense (one float64 block; the default for all-double inputs) or columns",
    )
    run.add_argument("--name", default="run", help="name of the run in the report")
    _add_load_options(run)
    run.add_argument("--json", type=Path, help="write the report here, and a PNG beside it")
    _load_command(run, _run)

    e2e = commands.add_parser(
        "e2e", help="load → extractor (Redis velocity) → two scorers, beside the scorer alone and the floor"
    )
    from benchmarks.e2e_bench import add_arguments as add_e2e_arguments

    add_e2e_arguments(e2e)
    _load_command(e2e, _e2e)

    compare = commands.add_parser("compare", help="before (sklearn), mleap and rtscore side by side")
    from benchmarks.compare import add_compare_arguments

    add_compare_arguments(compare)
    _load_command(compare, _compare)

    scorer = commands.add_parser(
        "scorer", help="the scorer under load: latency, CPU per call by thread, memory of 1 and 2 workers"
    )
    from benchmarks.scorer_bench import add_arguments

    add_arguments(scorer)
    _load_command(scorer, _scorer)

    overload = commands.add_parser(
        "overload", help="one scorer at twice its capacity: accepted p99, goodput, how fast refusals come"
    )
    from benchmarks.overload_bench import add_arguments as add_overload_arguments

    add_overload_arguments(overload)
    _load_command(overload, _overload)

    pool = commands.add_parser(
        "pool",
        help="the scorer pool vs C-core round_robin: tail under stalls (hedging), rate at p99 (batching)",
    )
    from benchmarks.pool_bench import add_arguments as add_pool_arguments

    add_pool_arguments(pool)
    _load_command(pool, _pool)

    fixture = commands.add_parser("fixture", help="build (or find cached) the seed-scale forest and bundle")
    fixture.add_argument("--quick", action="store_true", help="the small forest the quick compare uses")
    fixture.add_argument("--trees", type=int, help="number of trees (default 250, or 20 with --quick)")
    fixture.add_argument("--nodes", type=int, help="nodes per tree (default ~96,000)")
    fixture.set_defaults(func=_fixture)

    serve = commands.add_parser("sklearn-serve", help="serve a scikit-learn pickle over rtscore.v1.Scorer")
    from benchmarks.sklearn_server import add_serve_arguments

    add_serve_arguments(serve)
    serve.set_defaults(func=_sklearn_serve)

    plot = commands.add_parser("plot", help="redraw the PNG of a report JSON")
    plot.add_argument("report", type=Path)
    plot.set_defaults(func=_plot)


def _load_command(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """A command that generates load: `func` runs it, holding `--cpu-latency-us` for the whole run."""
    parser.add_argument(
        "--cpu-latency-us",
        type=int,
        metavar="US",
        help="hold the machine's idle CPUs to wake-ups within US microseconds for the run, every target "
        "alike (0: polling; needs root); the report's machine.cpu_idle says what was in force",
    )
    parser.set_defaults(func=functools.partial(_run_load, func))


def _run_load(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    # SIGTERM unwinds like Ctrl-C, so every server and client the run started is stopped on the way out
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if args.cpu_latency_us is None:
        return func(args)
    from rtscore.cpu_latency import CpuLatencyRequest

    try:
        request = CpuLatencyRequest(args.cpu_latency_us)
    except ValueError as err:
        raise InvalidArgument(f"--cpu-latency-us: {err}") from None
    with request as held:
        if not held.held:
            print(f"warning: running without the CPU latency limit: {held.reason}", file=sys.stderr)
        return func(args)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("open", "closed"), default="open")
    parser.add_argument("--rate", type=float, default=100.0, help="open loop: requests per second")
    parser.add_argument("--arrivals", choices=("poisson", "constant"), default="poisson")
    parser.add_argument("--concurrency", type=int, default=1, help="closed loop: concurrent callers")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--duration", type=float, help="measured seconds (default 10)")
    length.add_argument("--count", type=int, help="measured requests instead of a duration")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent but not measured")
    parser.add_argument("--batch", type=int, default=1, help="rows per request")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of every call, seconds")
    parser.add_argument("--processes", type=int, default=1, help="client processes sharing the load")
    parser.add_argument(
        "--channels",
        type=int,
        default=1,
        help="connections per client process, calls spread over them (several per server worker)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the Poisson arrivals")
    from benchmarks.clients import add_client_option

    add_client_option(parser)
    parser.add_argument("--ca", type=Path, help="TLS: the servers' CA certificate (PEM)")
    parser.add_argument("--cert", type=Path, help="mutual TLS: this client's certificate (PEM), with --key")
    parser.add_argument("--key", type=Path, help="mutual TLS: this client's private key (PEM)")


def _run(args: argparse.Namespace) -> int:
    from benchmarks import clients, report
    from benchmarks.loadgen import LoadSpec
    from benchmarks.progress import ProgressBar

    extractor: dict[str, Any] = {}
    if args.extractor:
        from extractor.bench import EVALUATE_METHOD

        extractor = {"method": EVALUATE_METHOD}
    elif not args.model:
        raise InvalidArgument("--model names the model to score (needed with --target and --scorers)")
    spec = LoadSpec(
        target=args.target or args.scorers or args.extractor,
        **extractor,
        mode=args.mode,
        rate=args.rate,
        arrivals=args.arrivals,
        duration=None if args.count is not None else (args.duration or 10.0),
        count=args.count,
        warmup=args.warmup,
        concurrency=args.concurrency,
        channels=args.channels,
        timeout=args.timeout,
        seed=args.seed,
        ca=args.ca,
        cert=args.cert,
        key=args.key,
    )
    spec.check()
    requests = _requests(args)
    bar = ProgressBar(args.name, clients.expected_seconds(spec))
    pool: dict[str, Any] = {}
    try:
        if args.scorers:
            pool = _run_pool(args, spec, requests, bar)
            result = pool.pop("result")
        else:
            result = clients.run(spec, requests, args.processes, bar, args.client)
    finally:
        bar.close()
    record = report.run_record(args.name, result, batch=args.batch, **pool)
    print(report.run_table([record]))
    if result.short or result.late:
        print(_shortfall(record, args.processes), file=sys.stderr)
    if args.json:
        png = report.write_report(report.build_report([record]), args.json)
        print(f"wrote {args.json} and {png}")
    return 0


def _run_pool(args: argparse.Namespace, spec: Any, requests: list[bytes], bar: Any) -> dict[str, Any]:
    """A run through the scorer pool; its result and the report's `pool`, `retries`, `hedges` keys."""
    from benchmarks.pool_load import run_in_process
    from scorer.client import PoolSettings, static_endpoints

    if args.processes != 1:
        raise InvalidArgument("--scorers runs the pool in one client process; leave out --processes")
    settings = PoolSettings(default_timeout_s=args.timeout, hedge=args.hedge, batch=args.micro_batch)
    result, stats = run_in_process(spec, requests, static_endpoints(args.scorers), settings, bar)
    return {"result": result, **stats}


def _shortfall(record: dict[str, Any], processes: int) -> str:
    """The warning printed when the clients could not send at the rate asked for."""
    return (
        f"warning: the client fell behind: achieved {record['achieved_rate']:.0f}/s of {record['rate']:g}/s "
        f"with {processes} client process(es), send lag p99 {record['client']['send_lag_ms']['p99']} ms; "
        "latencies include the client's own delays. "
        f"Try --processes {processes * 2}."
    )


def _requests(args: argparse.Namespace) -> list[bytes]:
    from benchmarks import frames

    if args.extractor:
        from extractor.bench import evaluate_requests

        if args.form is not None:
            raise InvalidArgument("--form shapes ScoreRequests; an extractor is sent transactions")
        if args.transactions is None:
            raise InvalidArgument("--extractor needs --transactions F.jsonl (rtscore extractor generate)")
        return evaluate_requests(args.transactions)

    if args.frame is not None:
        frame = frames.load_leap_frame(args.frame)
        # the dense form wherever the inputs are all doubles, as rtscore's own clients send it
        dense = args.form == "dense" or (args.form is None and frames.all_doubles(frame, str(args.frame)))
        return frames.score_requests(frame, args.model, args.batch, str(args.frame), dense=dense)
    import grpc

    from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc

    target = args.target or args.scorers.split(",")[0]
    from rtscore.tls import channel_credentials, wants_tls

    channel = (
        grpc.secure_channel(target, channel_credentials(args.ca, args.cert, args.key))
        if wants_tls(args.ca, args.cert, args.key)
        else grpc.insecure_channel(target)
    )
    with channel:
        try:
            info = scorer_pb2_grpc.ScorerStub(channel).GetModel(
                scorer_pb2.GetModelRequest(model=args.model), timeout=args.timeout
            )
        except grpc.RpcError as err:
            raise InvalidArgument(
                f"{target}: GetModel({args.model!r}) failed ({err.code().name}: {err.details()}); "
                "pass --frame to send rows from a file"
            ) from err
    inputs = list(info.inputs)
    dense = args.form == "dense" or (args.form is None and frames.all_double_scalars(inputs))
    return frames.requests_from_schema(inputs, args.model, args.batch, seed=args.seed, dense=dense)


def _e2e(args: argparse.Namespace) -> int:
    from benchmarks.e2e_bench import run_e2e

    return run_e2e(args)


def _compare(args: argparse.Namespace) -> int:
    from benchmarks.compare import run_compare

    return run_compare(args)


def _scorer(args: argparse.Namespace) -> int:
    from benchmarks.scorer_bench import run

    return run(args)


def _overload(args: argparse.Namespace) -> int:
    from benchmarks.overload_bench import run

    return run(args)


def _pool(args: argparse.Namespace) -> int:
    from benchmarks.pool_bench import run

    return run(args)


def _fixture(args: argparse.Namespace) -> int:
    from benchmarks.compare import fixture_for

    fixture = fixture_for(args.quick, args.trees, args.nodes)
    for key, value in fixture.items():
        print(f"{key}: {value}")
    return 0


def _sklearn_serve(args: argparse.Namespace) -> int:
    from benchmarks.sklearn_server import serve

    serve(args.model, args.host, args.port, args.threads, args.name)
    return 0


def _plot(args: argparse.Namespace) -> int:
    import json

    from benchmarks.plot import write_plot

    try:
        data = json.loads(args.report.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InvalidArgument(f"{args.report}: cannot read the report: {err}") from err
    print(f"wrote {write_plot(data, args.report.with_suffix('.png'))}")
    return 0
