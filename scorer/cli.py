"""`rtscore scorer serve`: run the scorer service (one process, or several sharing a port)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rtscore.errors import InvalidArgument

# CLI flag → ScorerSettings field; flags left out fall back to RTSCORE_SCORER_* and the defaults.
_SETTINGS_FLAGS = {
    "host": "host",
    "port": "port",
    "workers": "workers",
    "scoring_threads": "scoring_threads",
    "inline_rows": "inline_rows",
    "inline_budget_ms": "inline_budget_ms",
    "max_in_flight": "max_in_flight",
    "max_pending_calls": "max_pending_calls",
    "pending_calls_soft_limit": "pending_calls_soft_limit",
    "canary_interval": "canary_interval_s",
    "canary_budget_ms": "canary_budget_ms",
    "drain_grace": "drain_grace_s",
    "metrics_port": "metrics_port",
    "log_level": "log_level",
    "event_loop": "event_loop",
    "cpu_latency_us": "cpu_latency_us",
    "registry": "registry",
    "pool": "pool",
    "env": "environment",
    "token_file": "registry_token_file",
    "registry_ca": "registry_ca",
    "registry_cert": "registry_cert",
    "registry_key": "registry_key",
    "operator_token_file": "operator_token_file",
    "advertise": "advertise",
    "heartbeat_ttl": "heartbeat_ttl_s",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
    "tls_client_ca": "tls_client_ca",
}


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `scorer` group and its `serve` command."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = group.add_subparsers(dest="scorer_command", metavar="COMMAND", required=True)
    serve = sub.add_parser("serve", help="serve models over gRPC (rtscore.v1.Scorer and MLeap's API)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="gRPC port; 0 picks a free one (default 50051)")
    serve.add_argument("--workers", type=int, help="processes sharing the port via SO_REUSEPORT")
    serve.add_argument(
        "--model", action="append", default=[], metavar="NAME=BUNDLE", help="a model to load at start"
    )
    serve.add_argument(
        "--canary",
        action="append",
        default=[],
        metavar="NAME=FRAME.json:EXPECTED.json",
        help="a model's canary: an MLeap JSON frame and the output columns it must produce",
    )
    serve.add_argument("--scoring-threads", type=int, help="threads running transforms (default: cores)")
    serve.add_argument(
        "--inline-rows", type=int, help="score frames this small on the event loop when idle (default 0)"
    )
    serve.add_argument(
        "--inline-budget-ms",
        type=float,
        help="score on the event loop when idle if the model's measured cost fits this (default 1; 0: off)",
    )
    serve.add_argument("--max-in-flight", type=int, help="calls in progress before RESOURCE_EXHAUSTED")
    serve.add_argument(
        "--max-pending-calls",
        type=int,
        help="calls gRPC's core holds for the event loop before it refuses new ones (default 32; 0: off)",
    )
    serve.add_argument(
        "--pending-calls-soft-limit",
        type=int,
        help="pending calls from which refusals start (default 16, or --max-pending-calls if lower)",
    )
    serve.add_argument("--canary-interval", type=float, metavar="SECONDS", help="seconds between canaries")
    serve.add_argument("--canary-budget-ms", type=float, help="latency budget of one canary run")
    serve.add_argument("--drain-grace", type=float, metavar="SECONDS", help="grace for in-flight calls")
    serve.add_argument("--metrics-port", type=int, help="Prometheus endpoint port (worker i: port + i)")
    serve.add_argument("--log-level", help="log level (default INFO)")
    serve.add_argument("--event-loop", choices=("uvloop", "asyncio"), help="asyncio loop (default uvloop)")
    serve.add_argument(
        "--cpu-latency-us",
        type=int,
        metavar="US",
        help="hold idle CPUs to wake-ups within US microseconds while serving (0: polling; needs root)",
    )
    follow = serve.add_argument_group("following a registry (models come from its deployments)")
    follow.add_argument("--registry", metavar="HOST:PORT", help="registry to follow")
    follow.add_argument("--pool", help="pool whose deployments to host (default: default)")
    follow.add_argument("--env", help="environment whose deployments to host (default: production)")
    follow.add_argument("--token-file", metavar="FILE", help="file with the registry token (service role)")
    follow.add_argument("--registry-ca", metavar="PEM", help="CA of the registry's TLS certificate")
    follow.add_argument("--registry-cert", metavar="PEM", help="client certificate for a mutual-TLS registry")
    follow.add_argument("--registry-key", metavar="PEM", help="private key of --registry-cert")
    follow.add_argument("--advertise", metavar="HOST:PORT", help="endpoint announced to the membership")
    follow.add_argument("--heartbeat-ttl", type=float, metavar="SECONDS", help="membership ttl (default 3)")
    admin = serve.add_argument_group("admin calls and TLS")
    admin.add_argument(
        "--operator-token-file", metavar="FILE", help="LoadModel/UnloadModel callers must send this token"
    )
    admin.add_argument(
        "--load-dir", action="append", default=[], metavar="DIR", help="LoadModel may read bundles here"
    )
    admin.add_argument("--tls-cert", metavar="PEM", help="server certificate chain (TLS)")
    admin.add_argument("--tls-key", metavar="PEM", help="server private key (TLS)")
    admin.add_argument("--tls-client-ca", metavar="PEM", help="CA of client certificates (mutual TLS)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from rtscore.settings import settings_from
    from rtscore.workers import end_with_supervisor, run_workers
    from scorer.service import logs
    from scorer.service.server import serve
    from scorer.service.settings import ScorerSettings

    given = {field: getattr(args, flag) for flag, field in _SETTINGS_FLAGS.items()}
    if args.load_dir:
        given["load_dirs"] = args.load_dir
    settings = settings_from(ScorerSettings, **{k: v for k, v in given.items() if v is not None})
    models = model_specs(args.model, args.canary)
    logs.configure(settings.log_level)
    if settings.workers > 1:
        pairs = [("--model", m) for m in args.model] + [("--canary", c) for c in args.canary]
        return run_workers("scorer", settings, [a for pair in pairs for a in pair])
    end_with_supervisor()
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.run(serve(settings, models))
    return asyncio.run(serve(settings, models))


def model_specs(models: list[str], canaries: list[str]) -> list[Any]:
    """Parse `NAME=BUNDLE` and `NAME=FRAME.json:EXPECTED.json` options into model specs."""
    from scorer.service.canary import Canary
    from scorer.service.model import ModelSpec

    paths = dict(_pair(m, "--model", "NAME=BUNDLE") for m in models)
    checks: dict[str, Canary] = {}
    for option in canaries:
        name, files = _pair(option, "--canary", "NAME=FRAME.json:EXPECTED.json")
        frame, sep, expected = files.partition(":")
        if not sep or name not in paths:
            raise InvalidArgument(
                f"--canary {option!r}: expected NAME=FRAME.json:EXPECTED.json for a --model"
            )
        checks[name] = Canary(_frame(frame), _frame(expected))
    return [ModelSpec(name, path, canary=checks.get(name)) for name, path in paths.items()]


def _pair(option: str, flag: str, form: str) -> tuple[str, str]:
    name, sep, value = option.partition("=")
    if not sep or not name or not value:
        raise InvalidArgument(f"{flag} {option!r}: expected {form}")
    return name, value


def _frame(path: str) -> Any:
    from scorer.frame import LeapFrame

    try:
        return LeapFrame.from_mleap_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as err:
        raise InvalidArgument(f"{path}: cannot read frame ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise InvalidArgument(f"{path}: invalid JSON ({err})") from None
