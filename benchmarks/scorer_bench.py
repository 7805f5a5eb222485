"""The scorer service under load: latency, server CPU per call by thread, and memory of 1 and 2 workers.

Run: .venv/bin/rtscore bench scorer [--quick] [--rate 500 --seconds 60 --rounds 6] [--json FILE]

One worker takes open-loop single-row calls at `--rate` for `--seconds`; two workers then take a ladder of
rates up to `--top-rate`. Beside each, the transport floor (`benchmarks.floor_server`, a bare grpc.aio
server sending the scorer's reply, with as many processes) is up at once and takes the same rates from the
same client in turn (one worker: `--rounds` rounds in a rotating order; the ladder: rate by rate), and the
scorer is read against it, over all rounds and round by round: p50 and p99 over the floor's, the server
CPU per call beyond the floor's, and for each the highest rate held at p99 <= 10 ms. One worker is also
read against the kernel floor (`kernel-floor`: the floor that first scores each call's dense rows with the
bundle's own classifier), which takes the model's work as served out of the comparison. The load client is
the native one where it is built (`--client python`: in this process, and a second one above
`--one-client-up-to`), never inside the server. Beside each run's latency: the server's CPU per call split
by thread (the event loop, the scoring threads, gRPC's own threads), which says where a call's time goes.
Memory is the proportional set size (PSS) of each server's whole process tree once warm, so the
memory-mapped forest that workers share is counted once, not once per worker.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks import clients, report
from benchmarks.compare import fixture_for
from benchmarks.frames import score_requests
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.progress import ProgressBar
from benchmarks.rounds import alternate, rounds_for, warmup_for
from benchmarks.scorer_figures import floor_ratios, floor_table, highest_held_rates, memory_lines, table
from benchmarks.server_cpu import ThreadCpu, thread_cpu
from benchmarks.targets import ServerProcess, connections_for, floor_server, rtscore_scorer

MODEL = "bench"
_MB = 1 << 20


@dataclass(frozen=True)
class Plan:
    """How hard and how long each part runs."""

    rate: float
    seconds: float
    ladder: tuple[float, ...]
    ladder_seconds: float
    warmup: float
    rounds: int  # the one-worker runs' measured seconds, split into this many alternating rounds


FULL = Plan(
    rate=500.0,
    seconds=60.0,
    ladder=(750.0, 1500.0, 2250.0, 3000.0),
    ladder_seconds=15.0,
    warmup=3.0,
    rounds=6,
)
QUICK = Plan(rate=200.0, seconds=3.0, ladder=(200.0, 400.0), ladder_seconds=2.0, warmup=0.5, rounds=2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `rtscore bench scorer`."""
    parser.add_argument("--quick", action="store_true", help="the small forest and short runs (CI)")
    parser.add_argument("--bundle", type=Path, help="bundle to serve (default: the cached fixture)")
    parser.add_argument("--frame", type=Path, help="MLeap JSON frame with the rows (default: the fixture's)")
    parser.add_argument("--rate", type=float, help="one worker's open-loop rate (default 500/s)")
    parser.add_argument("--seconds", type=float, help="measured seconds at that rate (default 60)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="split those seconds into this many rounds, alternating the floors and the scorer in a"
        " rotating order (default 6, 2 with --quick, fewer where that leaves under a second a round; 1: one"
        " run of each after the other)",
    )
    parser.add_argument("--top-rate", type=float, help="the two workers' ladder ends here (default 3000/s)")
    parser.add_argument(
        "--one-client-up-to", type=float, default=800.0, help="above: two Python client processes"
    )
    parser.add_argument("--json", type=Path, help="write the report here, and a PNG beside it")
    clients.add_client_option(parser)
    parser.add_argument(
        "--form",
        choices=("dense", "columns"),
        help="request frames: dense (one float64 block; the default for all-double inputs) or columns",
    )


def run(args: argparse.Namespace) -> int:
    """Measure, print the table and the memory figures, and write the report when asked."""
    plan = QUICK if args.quick else FULL
    rate = args.rate if args.rate is not None else plan.rate
    seconds = args.seconds if args.seconds is not None else plan.seconds
    ladder = plan.ladder if args.top_rate is None else _ladder(args.top_rate)
    rounds = rounds_for(args.rounds, plan.rounds, seconds)  # before the fixture, which takes minutes
    fixture = fixture_for(args.quick) if args.bundle is None or args.frame is None else {}
    bundle = args.bundle or fixture["bundle"]
    frame_path = args.frame or fixture["frame"]
    from benchmarks.frames import all_doubles, load_leap_frame

    frame = load_leap_frame(Path(frame_path))
    # the dense form wherever the inputs are all doubles, as rtscore's own clients send it
    form = args.form or ("dense" if all_doubles(frame) else "columns")
    requests = score_requests(frame, MODEL, 1, dense=form == "dense")
    client = args.client or clients.default_client()
    say = functools.partial(_say, time.monotonic())
    # in a process of its own, so this one does not hold the model while it runs the load
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as timing:
        transform = timing.submit(transform_ms, Path(bundle), Path(frame_path)).result()
        planned = timing.submit(has_dense_plan, Path(bundle)).result()
    say(f"in-process transform of one row: {transform['avg']:.3f} ms on average (the scoring work itself)")
    runs: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    speeds: list[float] = []  # the machine's speed at each round, the ladder's steps included
    for workers, rates, each, split in ((1, (rate,), seconds, rounds), (2, ladder, plan.ladder_seconds, 1)):
        # the transport floor with as many processes, then the scorer, all up at once and measured in
        # turn at each rate, so the ratios between them are not ratios between two minutes of this host
        floor = floor_server(Path(bundle), Path(frame_path), MODEL, workers)
        scorer = rtscore_scorer(Path(bundle), MODEL, workers)
        servers = [floor, scorer]
        if workers == 1 and planned and form == "dense":
            # the floor plus the model's own kernel on each call's rows: what is left is the service
            servers.insert(1, floor_server(Path(bundle), Path(frame_path), MODEL, workers, kernel=True))
        channels = connections_for(workers)
        with ExitStack() as stack:
            # the scorer first, alone: the floors map the same forest, and would take shares of its PSS
            for server in sorted(servers, key=lambda s: s is not scorer):
                say(f"starting {server.name}: {' '.join(server.command[1:])}")
                server.launch()
                stack.callback(server.stop)
                server.wait_ready()
                assert server.process is not None
                warm_up = LoadSpec(server.target, mode="closed", concurrency=workers, channels=channels,
                                   duration=plan.warmup, warmup=0.5)  # fmt: skip
                warm = clients.run(warm_up, requests, client=client)
                if server is scorer:
                    memory[server.name] = tree_memory(server.process.pid)
                    memory[server.name]["warm_up_calls"] = warm.recorder.requests
            measured: dict[str, list[dict[str, Any]]] = {server.name: [] for server in servers}
            by_name = {server.name: server for server in servers}
            for index, r in enumerate(rates):
                # the Python client needs a second process at high rates; the native one does not
                processes = 1 if r <= args.one_client_up_to or client == "go" else 2
                load = functools.partial(
                    _round, by_name, rate=r, seconds=each / split, rounds=split,
                    first_warmup=min(plan.warmup, 2.0), channels=channels, processes=processes,
                    requests=requests, client=client,
                )  # fmt: skip
                cpu = functools.partial(_cpu, by_name)
                for name, seen in alternate(list(by_name), split, load, cpu, index, speeds).items():
                    measured[name].append(report.run_record(
                        f"{name}@{r:g}", seen.result, workers=workers, server_cpu_ms=seen.cpu_ms_per_call,
                        rounds_ms=seen.by_round,
                    ))  # fmt: skip
            runs += [record for server in servers for record in measured[server.name]]
    one, two = memory.get("rtscore-1"), memory.get("rtscore-2")
    if one and two:
        memory["workers_ratio"] = round(two["workers_pss_mb"] / one["workers_pss_mb"], 3)
        memory["tree_ratio"] = round(two["tree_pss_mb"] / one["tree_pss_mb"], 3)
    facts = {k: v for k, v in fixture.items() if k not in ("model_file", "bundle", "frame")}
    over_floor = floor_ratios(runs, transform["avg"])
    held = highest_held_rates(runs)
    scorer_facts = {"memory": memory, "bundle": str(bundle), "request_form": form, "over_floor": over_floor,
                    "highest_rate_p99_10ms": held, "transform_ms": transform}  # fmt: skip
    data = report.build_report(runs, facts, scorer=scorer_facts, python_loop_ms_by_round=speeds)
    print()
    print(table(runs))
    print()
    print(floor_table(over_floor))
    reached = (f"{name} {rate:g}/s" if rate else f"{name} none" for name, rate in held.items())
    print(f"highest rate run with p99 <= 10 ms and no errors: {', '.join(reached)}")
    print(f"machine speed (a million Python additions, ms) at each round: {', '.join(map(str, speeds))}")
    print()
    print(memory_lines(memory))
    if args.json:
        png = report.write_report(data, args.json)
        print(f"wrote {args.json} and {png}")
    return 0


def _ladder(top: float) -> tuple[float, ...]:
    steps = [top * f for f in (0.25, 0.5, 0.75, 1.0)]
    return tuple(round(s) for s in steps if s >= 1)


def _cpu(servers: dict[str, ServerProcess], name: str) -> ThreadCpu:
    """The CPU of server `name`'s threads now."""
    process = servers[name].process
    assert process is not None, f"{name} was not started"
    return thread_cpu(process.pid)


def _round(
    servers: dict[str, ServerProcess],
    name: str,
    round_: int,
    *,
    rate: float,
    seconds: float,
    rounds: int,
    first_warmup: float,
    channels: int,
    processes: int,
    requests: Sequence[bytes],
    client: clients.Client | None,
) -> RunResult:
    """One round of open-loop load on server `name`; the first warms it up longer than the later ones."""
    server = servers[name]
    warmup = warmup_for(round_, first_warmup)
    spec = LoadSpec(server.target, rate=rate, channels=channels, duration=seconds, warmup=warmup)
    label = f"{server.name} @{rate:g}/s" + (f" round {round_ + 1}/{rounds}" if rounds > 1 else "")
    return _load(spec, requests, processes, label, client)


def _load(
    spec: LoadSpec, requests: Sequence[bytes], processes: int, label: str, client: clients.Client | None
) -> RunResult:
    bar = ProgressBar(label, clients.expected_seconds(spec))
    try:
        return clients.run(spec, requests, processes, bar, client)
    finally:
        bar.close()


def tree_memory(pid: int) -> dict[str, Any]:
    """PSS, RSS and USS in MB of `pid` and its descendants, and of the serving processes alone."""
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    rows = []
    for process in processes:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rows.append((process, info))
    # with --workers N the root only supervises; the workers are the processes that serve
    serving = [(p, i) for p, i in rows if p.pid != pid] or rows
    return {
        "processes": len(rows),
        "tree_pss_mb": round(sum(i.pss for _, i in rows) / _MB, 1),
        "workers_pss_mb": round(sum(i.pss for _, i in serving) / _MB, 1),
        "workers_rss_mb": round(sum(i.rss for _, i in serving) / _MB, 1),
        "workers_uss_mb": round(sum(i.uss for _, i in serving) / _MB, 1),
    }


def has_dense_plan(bundle: Path) -> bool:
    """Whether the bundle scores dense rows straight through its classifier (and so has a kernel floor)."""
    from scorer.bundle import load_bundle
    from scorer.bundle.plan import dense_plan

    loaded = load_bundle(bundle)
    return dense_plan(loaded.root_op, loaded.input_schema, loaded.output_schema) is not None


def transform_ms(bundle: Path, frame_path: Path, rows: int = 2_000) -> dict[str, float]:
    """Wall milliseconds of rtscore's in-process transform of one row (avg, p50, p99), over the frame's
    first `rows` rows: the scoring work a served call cannot avoid, measured in this process."""
    import json

    import numpy as np

    from benchmarks.runtime_bench import summary_ms, time_calls
    from scorer.bundle import load_bundle
    from scorer.frame import LeapFrame

    frame = json.loads(frame_path.read_text())
    one_row = [
        LeapFrame.from_mleap_json({"schema": frame["schema"], "rows": [r]}) for r in frame["rows"][:rows]
    ]
    seconds: np.ndarray = time_calls(
        load_bundle(bundle).transform, one_row, warmup=min(200, len(one_row) // 5)
    )
    summary = summary_ms(seconds)
    return {k: round(summary[k], 4) for k in ("avg", "p50", "p99")}


def _say(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scorer_bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
