"""`rtscore bench compare`: the transport floor, before (sklearn over gRPC), MLeap served and in-process,
and rtscore, in one run."""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtscore.errors import FailedPrecondition, InvalidArgument, RtscoreError

ALL_TARGETS = ("floor", "before", "mleap-served", "mleap", "rtscore-1", "rtscore-2")


@dataclass(frozen=True)
class Plan:
    """How long and how hard each part of a comparison runs."""

    rounds: int
    seconds: float  # measured seconds per target, over all rounds
    warmup: float
    probe_seconds: float
    frame_rows: int
    extra_rates: tuple[float, ...]
    sweep_steps: int
    sweep_seconds: float
    mleap_iterations: int
    # Closed-loop seconds that warm a JVM target before anything is measured: HotSpot compiles MLeap's
    # transform after thousands of calls, and a served JVM in production is long past that point.
    jvm_warmup: float


FULL = Plan(
    rounds=3,
    seconds=30.0,
    warmup=3.0,
    probe_seconds=3.0,
    frame_rows=10_000,
    extra_rates=(500.0,),
    sweep_steps=8,
    sweep_seconds=8.0,
    mleap_iterations=5_000,
    jvm_warmup=15.0,
)
QUICK = Plan(
    rounds=2,
    seconds=3.0,
    warmup=0.5,
    probe_seconds=1.0,
    frame_rows=500,
    extra_rates=(),
    sweep_steps=0,
    sweep_seconds=0.0,
    mleap_iterations=300,
    jvm_warmup=3.0,
)


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `rtscore bench compare`."""
    parser.add_argument("--quick", action="store_true", help="small forest, short runs (under 60 s)")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help=f"subset of {','.join(ALL_TARGETS)}")
    parser.add_argument("--rate", type=float, help="common rate (default: half what the slowest sustains)")
    parser.add_argument("--seconds", type=float, help="measured seconds per target, split over the rounds")
    parser.add_argument("--rounds", type=int, help="alternations of the targets")
    parser.add_argument("--batch", type=int, default=1, help="rows per request")
    parser.add_argument("--trees", type=int, help="fixture size: trees (default 250, or 20 with --quick)")
    parser.add_argument("--nodes", type=int, help="fixture size: nodes per tree (default ~96,000)")
    parser.add_argument("--model-file", type=Path, help="sklearn joblib pickle instead of the fixture's")
    parser.add_argument("--bundle", type=Path, help="Bundle.ML of the same model instead of the fixture's")
    parser.add_argument(
        "--frame", type=Path, help="MLeap JSON LeapFrame of input rows instead of the fixture's"
    )
    parser.add_argument("--json", type=Path, help="write the report here, and a PNG beside it")
    from benchmarks.clients import add_client_option

    add_client_option(parser)


def fixture_for(quick: bool, trees: int | None = None, nodes: int | None = None) -> dict[str, Any]:
    """The cached forest (seed-scale, small with `quick`, or sized by `trees`, `nodes`), built once."""
    try:
        from benchmarks.fixture import SMALL, build_fixture
    except ImportError as err:
        raise FailedPrecondition(f"the seed-scale fixture is not available: {err}") from err
    trees = trees if trees is not None else (SMALL["trees"] if quick else 250)
    nodes = nodes if nodes is not None else (SMALL["target_nodes"] if quick else 96_000)
    if trees < 1 or nodes < 1:
        raise InvalidArgument(f"forest sizes must be positive, got {trees} trees of {nodes} nodes")
    paths = build_fixture(trees, nodes)
    meta: dict[str, Any] = json.loads(paths.meta_json.read_text())
    return {"model_file": paths.model_joblib, "bundle": paths.bundle, "frame": paths.frame_json, **meta}


def forest_facts(estimator: Any) -> dict[str, Any]:
    """Trees, nodes and depth of a fitted scikit-learn forest (or one tree)."""
    trees = getattr(estimator, "estimators_", None) or [estimator]
    if not all(hasattr(t, "tree_") for t in trees):
        return {"estimator": type(estimator).__name__}
    fitted = [t.tree_ for t in trees]
    return {
        "estimator": type(estimator).__name__,
        "trees": len(fitted),
        "nodes": int(sum(t.node_count for t in fitted)),
        "max_depth": int(max(t.max_depth for t in fitted)),
    }


def _targets(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(names) - set(ALL_TARGETS))
    if unknown or not names:
        raise InvalidArgument(f"unknown targets {unknown}: choose from {', '.join(ALL_TARGETS)}")
    return names


def _inputs(args: argparse.Namespace, plan: Plan) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fixture facts and paths, the LeapFrame every target scores)."""
    from benchmarks.frames import load_leap_frame
    from benchmarks.sklearn_server import load_estimator

    if args.model_file is None:
        fixture = fixture_for(args.quick, args.trees, args.nodes)
    else:
        fixture = {"model_file": args.model_file, "bundle": args.bundle, "frame": args.frame}
        fixture.update(forest_facts(load_estimator(args.model_file)))
    frame_path = args.frame or fixture.get("frame")
    if frame_path is None:
        raise InvalidArgument("--model-file needs --frame: the rows every target scores")
    # Absolute paths: the servers under test are subprocesses and the report should say where inputs were.
    for key in ("model_file", "bundle", "frame"):
        if fixture.get(key):
            fixture[key] = Path(fixture[key]).resolve()
    fixture["frame"] = Path(frame_path).resolve()  # the floor scores its reply from these very rows
    frame = load_leap_frame(Path(frame_path))
    # The same rows for everyone, cut so request preparation stays small.
    frame["rows"] = frame["rows"][: plan.frame_rows]
    return fixture, frame


def run_compare(args: argparse.Namespace) -> int:
    """Run the comparison and print the table; 0 when every requested target ran."""
    from benchmarks import report
    from benchmarks.headline import headline_ratios, headline_table

    plan = QUICK if args.quick else FULL
    if args.seconds is not None or args.rounds is not None:
        plan = _replace(plan, args)
    names = _targets(args.targets)
    fixture, frame = _inputs(args, plan)
    from benchmarks.session import CompareSession

    say = functools.partial(_say, time.monotonic())
    with CompareSession(fixture, frame, plan, args.batch, say, args.client) as session:
        skipped = session.start(names)
        runs, rate_note = session.measure(args.rate)
        runs += session.mleap() if "mleap" in names and "mleap" not in skipped else []
    skipped.update(session.skipped)
    facts = {k: v for k, v in fixture.items() if k not in ("model_file", "bundle", "frame")}
    paths = {k: str(fixture[k]) for k in ("model_file", "bundle", "frame") if fixture.get(k)}
    headline = headline_ratios(runs)
    data = report.build_report(
        runs,
        facts,
        compare={
            "rate": rate_note,
            "skipped": skipped,
            "inputs": paths,
            "batch": args.batch,
            "rounds": plan.rounds,
            "headline": headline,
        },
        python_loop_ms_by_round=session.speeds,
    )
    print()
    print(report.compare_table(runs))
    if headline:
        print("\nrtscore over the transport floor and over MLeap served (below 1.00x rtscore is faster):")
        print(headline_table(headline))
    print(f"\ncommon rate: {rate_note.get('rate'):g}/s ({rate_note.get('reason')})")
    sweep = rate_note.get("rtscore_p99_10ms")
    if sweep:
        under = sweep["last_rate_under"]
        upto = (
            f"up to {under:g}/s"
            if under
            else f"at none of the rates tried (down to {sweep['first_rate_over']:g}/s)"
        )
        print(f"rtscore's p99 stays under 10 ms {upto}: stopped because {sweep['stopped_because']}")
    for run in runs:
        client = run.get("client") or {}
        if client.get("short") or client.get("late"):
            lag = client["send_lag_ms"]["p99"]
            what = "could not send at the rate" if client.get("short") else "sent late"
            print(f"warning: {run['name']}: the client {what} (send lag p99 {lag} ms)", file=sys.stderr)
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if args.json:
        png = report.write_report(data, args.json)
        print(f"wrote {args.json} and {png}")
    return 1 if skipped else 0


def _replace(plan: Plan, args: argparse.Namespace) -> Plan:
    from dataclasses import replace

    return replace(plan, seconds=args.seconds or plan.seconds, rounds=args.rounds or plan.rounds)


def _say(started: float, text: str) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)


def nice_rate(rate: float) -> float:
    """Round a rate down to 1, 2 or 5 times a power of ten, so reports use recognisable numbers."""
    if rate <= 0 or not math.isfinite(rate):
        raise RtscoreError(f"cannot pick a common rate from {rate}")
    scale = 10 ** math.floor(math.log10(rate))
    return float(max(m for m in (1, 2, 5, 10) if m * scale <= rate + 1e-9) * scale)
