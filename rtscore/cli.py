"""The `rtscore` command: one subcommand group per service, plus `services` for the local stack."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from rtscore.errors import RtscoreError

# (group, module with `register(subparsers)`, one-line help). Modules are imported when the
# parser is built; they keep heavy imports inside their handlers so `rtscore --help` stays fast.
GROUPS: list[tuple[str, str | None, str]] = [
    ("services", "rtscore.localservices.cli", "local Postgres, Kafka and Redis for development and tests"),
    ("bundle", "scorer.bundle_cli", "inspect, score and export MLeap bundles in-process"),
    ("reference", "scorer.reference.cli", "MLeap's JVM runtime: the reference for correctness and speed"),
    ("scorer", "scorer.cli", "the scorer service: MLeap bundles over gRPC"),
    ("score", "scorer.client_cli", "score a frame with a running scorer"),
    ("extractor", "extractor.cli", "the extractor service: transactions to features, scorer pool client"),
    ("evaluate", "extractor.evaluate_cli", "evaluate one transaction with a running extractor"),
    ("registry", "registry.cli", "the registry service: model governance over gRPC and Postgres"),
    ("shadow", "shadow.cli", "shadow workers: score Kafka copies of live traffic with candidate models"),
    ("bench", "benchmarks.cli", "latency benchmarks: distributions side by side"),
    ("demo", "rtscore.demo.cli", "the whole platform in one run: a model's life up to a live promotion"),
]

Handler = Callable[[argparse.Namespace], int | None]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="rtscore", description=__doc__)
    # A dest no command option can clobber (`rtscore shadow status --group` names a consumer group).
    sub = parser.add_subparsers(dest="rtscore_group", metavar="GROUP", required=True)
    for name, module, help_text in GROUPS:
        if module is None:
            group = sub.add_parser(name, help=f"{help_text} (not built yet)", description=help_text)
            group.set_defaults(func=_not_built(name))
            continue
        importlib.import_module(module).register(sub, name, help_text)
    return parser


def _not_built(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(f"rtscore {name}: this service is not built yet", file=sys.stderr)
        return 2

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; domain errors become one line on stderr and a non-zero exit."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RtscoreError as err:
        print(f"rtscore {args.rtscore_group}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`rtscore bundle score … | head`): stop quietly, as Unix tools do;
        # stdout is pointed at /dev/null so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
