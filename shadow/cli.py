"""`rtscore shadow …`: run workers, evaluate a candidate, read stored scores, lag, and load labels."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from rtscore.errors import InvalidArgument


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `shadow` group."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="consume ShadowRecords and store every shadow model's scores")
    run.add_argument("--registry", help="registry address (default RTSCORE_REGISTRY)")
    run.add_argument("--env", dest="environment", help="environment whose shadow deployments run")
    run.add_argument("--pool", help="only deployments of this pool")
    run.add_argument("--topic", help="ShadowRecord topic (default rtscore.shadow)")
    run.add_argument("--group", help="consumer group (default rtscore-shadow)")
    run.add_argument("--dead-letter-topic", help="default <topic>.dlq")
    run.add_argument("--instance-id", help="static group membership id (KIP-345)")
    run.add_argument("--batch-size", type=int)
    run.add_argument("--threshold", type=float, help="decision threshold of shadow models (default 0.5)")
    run.add_argument("--metrics-port", type=int)
    run.add_argument("--log-level", default="WARNING")
    run.set_defaults(func=_run)

    evaluate = commands.add_parser("evaluate", help="compare a candidate with the champion and record it")
    evaluate.add_argument("ref", metavar="MODEL@VERSION")
    evaluate.add_argument("--env", dest="environment", required=True)
    evaluate.add_argument("--since", help="only rows scored at or after this ISO time")
    evaluate.add_argument("--against", default="champion", choices=["champion"])
    evaluate.add_argument("--threshold", type=float, help="decision threshold (default: as stored per row)")
    evaluate.add_argument("--registry", help="registry address (default RTSCORE_REGISTRY)")
    evaluate.add_argument("--no-record", action="store_true", help="compute and print, do not record")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=_evaluate)

    scores = commands.add_parser("scores", help="stored score rows of a model version")
    scores.add_argument("ref", metavar="MODEL@VERSION")
    scores.add_argument("--limit", type=int, default=20)
    scores.add_argument("--json", action="store_true")
    scores.set_defaults(func=_scores)

    status = commands.add_parser("status", help="lag per partition and rows per model")
    status.add_argument("--topic", help="ShadowRecord topic (default rtscore.shadow)")
    status.add_argument("--group", help="consumer group (default rtscore-shadow)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)

    bench = commands.add_parser(
        "bench", help="one worker's records/s, rows/s and lag (needs Postgres, Kafka)"
    )
    bench.add_argument(
        "--bundle", type=Path, help="default: the seed-scale forest of `rtscore bench fixture`"
    )
    bench.add_argument("--frame", type=Path, help="MLeap JSON frame whose rows become the features")
    bench.add_argument("--models", default="1,3", help="shadow model counts to run, e.g. 1,3")
    bench.add_argument("--records", type=int, default=20_000, help="backlog drained per count")
    bench.add_argument("--rate", type=float, default=1_000.0, help="records/s of the steady phase")
    bench.add_argument("--lag-seconds", type=float, default=20.0, help="length of the steady phase")
    bench.add_argument("--json", type=Path, help="write the results here too")
    bench.set_defaults(func=_bench)

    label = commands.add_parser("label", help="load chargeback labels: JSON lines {transaction_id, fraud}")
    label.add_argument("--file", type=Path, required=True)
    label.set_defaults(func=_label)


def _settings(args: argparse.Namespace) -> Any:
    from rtscore.settings import settings_from
    from shadow.settings import ShadowSettings

    names = ("registry", "environment", "pool", "topic", "group", "instance_id", "batch_size", "threshold")
    overrides = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if getattr(args, "dead_letter_topic", None):
        overrides["dead_letter_topic"] = args.dead_letter_topic
    if getattr(args, "metrics_port", None) is not None:
        overrides["metrics_port"] = args.metrics_port
    return settings_from(ShadowSettings, **overrides)


def _run(args: argparse.Namespace) -> int:
    from shadow.runner import run

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(_settings(args)))
    return 0


def _dsn() -> str:
    dsn = _settings(argparse.Namespace()).database_url
    if not dsn:
        raise InvalidArgument("no score database: set RTSCORE_DATABASE_URL or RTSCORE_SHADOW_DATABASE_URL")
    return str(dsn)


def _evaluate(args: argparse.Namespace) -> int:
    from registry.client import parse_ref
    from shadow.evaluate import evaluate_and_record

    name, version = parse_ref(args.ref)
    result = asyncio.run(
        evaluate_and_record(
            _dsn(),
            name,
            version,
            args.environment,
            since=args.since,
            threshold=args.threshold,
            record_it=not args.no_record,
            registry=args.registry,
        )
    )
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_evaluation(result)
    recorded = result.get("recorded")
    return 0 if recorded is None or recorded.get("passed") else 3


def _print_evaluation(r: dict[str, Any]) -> None:
    print(f"{r['candidate']} against champion version {r['champion_version']} in {r['environment']}:")
    print(f"  transactions {r['count']}, agreement {r['agreement']:.4f}")
    print(f"  mean |score difference| {r['mean_abs_difference']:.4f}")
    print(f"  PSI {r['psi']:.4f} ({r['psi_band']}), KS {r['ks_statistic']:.4f} (p {r['ks_pvalue']:.3g})")
    candidate = f"{r['candidate_latency_p50_ms']:.3f}/{r['candidate_latency_p99_ms']:.3f}"
    champion = f"{r['champion_latency_p50_ms']:.3f}/{r['champion_latency_p99_ms']:.3f}"
    print(
        f"  latency p50/p99 ms: candidate {candidate} (in this worker, per row of a batch),"
        f" champion {champion} (its live scorer call, network included)"
    )
    if r["labelled"]:
        print(
            f"  AUC over {r['labelled']} labels: candidate {r['candidate_auc']}, champion {r['champion_auc']}"
        )
        fraud = r["labelled_fraud"]
        for who in ("candidate", "champion"):
            print(f"  at the threshold, {who}: {_share(r[f'{who}_recall'])} of the {fraud} fraud caught,"
                  f" {_share(r[f'{who}_precision'])} of those flagged fraud")  # fmt: skip
    recorded = r.get("recorded")
    if recorded:
        outcome = "passed" if recorded.get("passed") else "failed"
        print(f"  recorded as evaluation {recorded.get('id')}: {outcome} ({recorded.get('verdict')})")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _scores(args: argparse.Namespace) -> int:
    from registry.client import parse_ref
    from shadow.queries import score_rows

    name, version = parse_ref(args.ref)
    rows = asyncio.run(score_rows(_dsn(), name, version, args.limit))
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        for r in rows:
            print(f"{r['transaction_id']}\t{r['score']:.6f}\t{r['champion_score']:.6f}\t{r['scored_at']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from shadow.queries import status

    settings = _settings(args)
    report = asyncio.run(status(settings))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    for p in report["partitions"]:
        print(f"partition {p['partition']}: stored {p['next_offset']} of {p['high']}, lag {p['lag']}")
    for m in report["models"]:
        print(f"{m['model']}@{m['version']}: {m['rows']} rows, last scored {m['last_scored_at']}")
    print(f"dead-lettered {report['dead_lettered']}, duplicates {report['duplicates']}")
    return 0


def _label(args: argparse.Namespace) -> int:
    from shadow.queries import load_labels

    count = asyncio.run(load_labels(_dsn(), args.file))
    print(f"{count} labels stored")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from benchmarks.shadow_bench import bench

    bundle, frame = args.bundle, args.frame
    if bundle is None or frame is None:
        from benchmarks.fixture import build_fixture

        paths = build_fixture()
        bundle, frame = bundle or paths.bundle, frame or paths.frame_json
    counts = [int(c) for c in args.models.split(",") if c.strip()]
    if not counts or min(counts) < 1:
        raise InvalidArgument(f"--models must list positive counts, got {args.models!r}")
    result = asyncio.run(bench(bundle, frame, sorted(counts), args.records, args.rate, args.lag_seconds))
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0
