"""`rtscore bundle`: inspect, score and export MLeap bundles in this process."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from scorer.frame import FrameError


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `bundle` group and its subcommands."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = group.add_subparsers(dest="bundle_command", metavar="COMMAND", required=True)

    inspect = sub.add_parser("inspect", help="print a bundle's name, format, op tree and schemas as JSON")
    inspect.add_argument("bundle", metavar="BUNDLE", help="bundle zip file or directory")
    inspect.set_defaults(func=_inspect)

    score = sub.add_parser("score", help="transform a JSON LeapFrame and print the result as MLeap does")
    score.add_argument("bundle", metavar="BUNDLE", help="bundle zip file or directory")
    score.add_argument(
        "--frame", required=True, metavar="FRAME.json", help="MLeap JSON LeapFrame ('-' = stdin)"
    )
    score.set_defaults(func=_score)

    try:
        export_cli = importlib.import_module("scorer.export.cli")
    except ModuleNotFoundError as err:
        if err.name not in ("scorer.export", "scorer.export.cli"):
            raise  # the exporter exists but is broken: say so rather than hide the command
        return  # no exporter in this tree: inspect and score work without it
    export_cli.add_export_parser(sub)


def _inspect(args: argparse.Namespace) -> int:
    from scorer.bundle import inspect_bundle

    json.dump(inspect_bundle(args.bundle), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _read_frame(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as err:
        raise FrameError(f"{path}: cannot read frame ({err.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FrameError(f"{path}: invalid JSON ({err})") from None


def _score(args: argparse.Namespace) -> int:
    from scorer.bundle import load_bundle
    from scorer.frame import LeapFrame

    bundle = load_bundle(args.bundle)
    try:
        frame = LeapFrame.from_mleap_json(_read_frame(args.frame))
    except FrameError as err:
        raise FrameError(f"{args.frame}: {err}") from None
    json.dump(bundle.transform(frame).to_mleap_json(), sys.stdout)
    sys.stdout.write("\n")
    return 0
