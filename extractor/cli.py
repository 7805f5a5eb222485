"""`rtscore extractor serve | check | generate | train`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# ExtractorSettings field → `serve` flag; the credentials take the scorer's names for the registry and
# `rtscore score`'s for scorers.
_SETTINGS_FLAGS = {
    "host": "host",
    "port": "port",
    "workers": "workers",
    "spec": "spec",
    "model": "model",
    "registry": "registry",
    "pool": "pool",
    "scorer_connections": "scorer_connections",
    "environment": "environment",
    "review_at": "review_at",
    "decline_at": "decline_at",
    "wait_ready_s": "wait_ready",
    "velocity": "velocity",
    "shadow_topic": "shadow_topic",
    "shadow_fraction": "shadow_fraction",
    "shadow_key": "shadow_key",
    "dense_frames": "dense_frames",
    "metrics_port": "metrics_port",
    "cpu_latency_us": "cpu_latency_us",
    "registry_token_file": "token_file",
    "registry_ca": "registry_ca",
    "registry_cert": "registry_cert",
    "registry_key": "registry_key",
    "scorer_ca": "ca",
    "scorer_cert": "cert",
    "scorer_key": "key",
}


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `extractor` group to the rtscore CLI."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    serve = actions.add_parser("serve", help="serve rtscore.v1.Extractor over gRPC")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="gRPC port (default 50071); 0 picks a free one")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes sharing the port via SO_REUSEPORT (default 1; more need --velocity redis)",
    )
    serve.add_argument("--spec", type=Path, help="feature spec (TOML); default: the project's own")
    serve.add_argument("--scorers", help="static scorer endpoints, H:P,H:P,…")
    serve.add_argument("--registry", help="registry address whose membership lists the scorers")
    serve.add_argument("--pool", help="scorer pool in the registry (default: default)")
    serve.add_argument(
        "--scorer-connections",
        type=int,
        help="connections to each scorer address (default 1); about 4 x N for scorers of --workers N",
    )
    serve.add_argument("--environment", help="environment of the pool (default production)")
    serve.add_argument("--model", help="model: name, name@version or role alias (default fraud:champion)")
    follow = serve.add_argument_group("credentials for the registry and the scorers")
    follow.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help="file with the registry token, service role (default: RTSCORE_TOKEN)",
    )
    follow.add_argument(
        "--registry-ca", metavar="PEM", type=Path, help="CA of the registry's TLS certificate"
    )
    follow.add_argument(
        "--registry-cert", metavar="PEM", type=Path, help="client certificate for a mutual-TLS registry"
    )
    follow.add_argument("--registry-key", metavar="PEM", type=Path, help="private key of --registry-cert")
    follow.add_argument(
        "--ca", metavar="PEM", type=Path, help="CA of the scorers' TLS certificates (speaks TLS)"
    )
    follow.add_argument(
        "--cert", metavar="PEM", type=Path, help="client certificate, for mutual TLS to scorers"
    )
    follow.add_argument("--key", metavar="PEM", type=Path, help="private key of --cert")
    serve.add_argument("--review-at", type=float, help="scores from here are reviewed (default 0.5)")
    serve.add_argument("--decline-at", type=float, help="scores from here are declined (default 0.8)")
    serve.add_argument(
        "--score-timeout-ms",
        type=float,
        help="deadline of each attempt at the scorer call; then another, within the call's (default 50)",
    )
    serve.add_argument(
        "--hedge",
        action="store_true",
        help="a slow scorer call also goes to a second scorer (<= 5%% of calls)",
    )
    serve.add_argument(
        "--hedge-delay-ms",
        type=float,
        help="hedge (implies --hedge) a scorer call after this long (default: running p95)",
    )
    serve.add_argument("--wait-ready", type=float, help="seconds to wait for a ready scorer (default 30)")
    serve.add_argument("--velocity", choices=["memory", "redis"], help="velocity store (default memory)")
    serve.add_argument("--redis-url", help="Redis for --velocity redis (default: RTSCORE_REDIS_URL)")
    serve.add_argument("--shadow-topic", help="Kafka topic for shadow copies")
    serve.add_argument("--shadow-fraction", type=float, help="share of transactions copied (default 0)")
    serve.add_argument("--shadow-key", help="sample key: transaction (the default), card_token, …")
    serve.add_argument("--kafka-bootstrap", help="Kafka for shadow copies (default: RTSCORE_KAFKA_BOOTSTRAP)")
    serve.add_argument(
        "--dense-frames",
        action=argparse.BooleanOptionalAction,
        help="send features as Frame.dense, one block of doubles (the default); --no-dense-frames: one "
        "column per feature",
    )
    serve.add_argument(
        "--metrics-port", type=int, help="Prometheus endpoint port (with --workers: worker i on PORT + i)"
    )
    serve.add_argument(
        "--cpu-latency-us",
        type=int,
        metavar="US",
        help="hold idle CPUs to wake-ups within US microseconds while serving (0: polling; needs root)",
    )
    serve.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    serve.set_defaults(func=_serve)

    check = actions.add_parser("check", help="does a spec produce exactly a bundle's inputs?")
    check.add_argument("spec", type=Path, metavar="SPEC", help="feature spec (TOML)")
    check.add_argument("--model", required=True, metavar="BUNDLE", help="bundle zip or directory")
    check.set_defaults(func=_check)

    generate = actions.add_parser("generate", help="synthetic transactions with labelled fraud (JSONL)")
    generate.add_argument("--count", type=int, required=True, help="transactions")
    generate.add_argument("--seed", type=int, default=0, help="seed (same seed, same file)")
    generate.add_argument("--fraud-rate", type=float, default=0.03, help="share of fraudulent transactions")
    generate.add_argument("--days", type=float, default=14.0, help="event-time span")
    generate.add_argument("--spec", type=Path, help="spec whose rate table sets amounts (default: own)")
    generate.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    generate.set_defaults(func=_generate)

    train = actions.add_parser("train", help="fit a forest on a spec's features and export it as a bundle")
    train.add_argument("--transactions", type=Path, required=True, help="JSONL from `generate`")
    train.add_argument("--spec", type=Path, help="feature spec (default: the project's own)")
    train.add_argument("--out", type=Path, required=True, help="bundle zip to write")
    train.add_argument("--trees", type=int, default=50, help="trees (default 50)")
    train.add_argument("--max-nodes", type=int, default=2_000, help="nodes per tree at most (default 2000)")
    train.add_argument("--name", default="fraud", help="bundle name (default fraud)")
    train.add_argument("--seed", type=int, default=0, help="forest seed")
    train.set_defaults(func=_train)


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from extractor.server import serve
    from extractor.settings import ExtractorSettings
    from rtscore.settings import settings_from
    from rtscore.workers import end_with_supervisor, run_workers
    from scorer.service import logs

    logs.configure(args.log_level)  # JSON lines with each record's fields, as the scorers write them
    # Flags left out fall back to RTSCORE_EXTRACTOR_* and the defaults (a worker's settings come so).
    given = {field: getattr(args, flag) for field, flag in _SETTINGS_FLAGS.items()}
    given = {field: value for field, value in given.items() if value is not None}
    if args.scorers is not None:
        given["scorers"] = [s for s in args.scorers.split(",") if s]
    if args.score_timeout_ms is not None:
        given["score_timeout_s"] = args.score_timeout_ms / 1e3
    if args.hedge or args.hedge_delay_ms is not None:  # a delay given means hedge
        given["hedge"] = True
    if args.hedge_delay_ms is not None:
        given["hedge_delay_s"] = args.hedge_delay_ms / 1e3
    if args.redis_url:
        given["RTSCORE_EXTRACTOR_REDIS_URL"] = args.redis_url
    if args.kafka_bootstrap:
        given["RTSCORE_EXTRACTOR_KAFKA_BOOTSTRAP"] = args.kafka_bootstrap
    settings = settings_from(ExtractorSettings, **given)
    if settings.workers > 1:
        return run_workers("extractor", settings, ["--log-level", args.log_level])
    end_with_supervisor()
    try:
        import uvloop

        return uvloop.run(serve(settings))
    except ImportError:
        return asyncio.run(serve(settings))


def _check(args: argparse.Namespace) -> int:
    from extractor.check import bundle_inputs, schema_problems
    from extractor.spec import load_spec

    loaded = load_spec(args.spec)
    problems = schema_problems(loaded.spec.feature_names(), bundle_inputs(args.model))
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.spec} does not fit {args.model}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.spec} produces exactly the {len(loaded.spec.feature_names())} inputs of {args.model}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from extractor.generate import GenerateOptions, generate, write_jsonl
    from extractor.spec import load_spec

    options = GenerateOptions(count=args.count, seed=args.seed, fraud_rate=args.fraud_rate, days=args.days)
    lines = generate(options, load_spec(args.spec).spec)
    write_jsonl(lines, args.out)
    fraud = sum(line["label"] for line in lines)
    print(json.dumps({"out": str(args.out), "transactions": len(lines), "fraud": fraud, "seed": args.seed}))
    return 0


def _train(args: argparse.Namespace) -> int:
    from extractor.spec import load_spec
    from extractor.train import TrainOptions, train

    options = TrainOptions(trees=args.trees, max_nodes=args.max_nodes, seed=args.seed, name=args.name)
    report = train(args.transactions, load_spec(args.spec), args.out, options)
    print(json.dumps(report, indent=2))
    return 0
