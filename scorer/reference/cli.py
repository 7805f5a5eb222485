"""`rtscore reference ...`: build the MLeap JVM harness, score, resave and benchmark bundles with it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `reference` group and its commands."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    build = commands.add_parser(
        "build", help="build the harness and mleap-served with Maven (each skipped when up to date)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even when the jar is newer than sources")
    build.set_defaults(func=_build)

    score = commands.add_parser("score", help="print MLeap's JSON LeapFrame output for a frame")
    score.add_argument("bundle", type=Path, help="bundle zip file or directory")
    score.add_argument("--frame", type=Path, required=True, help="frame in MLeap's JSON LeapFrame format")
    score.set_defaults(func=_score)

    resave = commands.add_parser("resave", help="load a bundle with MLeap and write it in a given format")
    resave.add_argument("bundle", type=Path, help="bundle zip file or directory")
    resave.add_argument("--out", type=Path, required=True, help="new path: a .zip file, else a directory")
    resave.add_argument("--format", choices=["json", "protobuf"], required=True, help="serialization format")
    resave.set_defaults(func=_resave)

    bench = commands.add_parser("bench", help="time MLeap's in-process transform, row by row")
    bench.add_argument("bundle", type=Path, help="bundle zip file or directory")
    bench.add_argument("--frame", type=Path, required=True, help="rows to cycle through (MLeap JSON)")
    bench.add_argument("--iterations", type=int, default=1000, help="timed calls (default 1000)")
    bench.add_argument("--warmup", type=int, default=200, help="untimed calls first (default 200)")
    bench.add_argument("--batch", type=int, default=1, help="rows per call (default 1)")
    bench.add_argument(
        "--mode",
        choices=["frame", "row"],
        default="frame",
        help="frame: transform a LeapFrame per call; row: MLeap's RowTransformer per row (default frame)",
    )
    bench.set_defaults(func=_bench)


def _build(args: argparse.Namespace) -> int:
    from scorer.reference.layout import HarnessLayout

    for what, layout in (
        ("reference harness", HarnessLayout.default()),
        ("mleap-served", HarnessLayout.served()),
    ):
        ran = layout.build(force=args.force)
        print(f"{what} {'built' if ran else 'up to date'}: {layout.jar}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from scorer.reference.harness import ReferenceHarness

    # Verbatim: tools compare against MLeap's own writer output, so nothing is re-encoded here.
    sys.stdout.write(ReferenceHarness().score_text(args.bundle, args.frame))
    return 0


def _resave(args: argparse.Namespace) -> int:
    from scorer.reference.harness import ReferenceHarness

    with ReferenceHarness() as harness:
        print(harness.resave(args.bundle, args.out, args.format))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from scorer.reference.harness import ReferenceHarness

    summary = ReferenceHarness().bench(
        args.bundle,
        args.frame,
        iterations=args.iterations,
        warmup=args.warmup,
        batch=args.batch,
        mode=args.mode,
    )
    print(json.dumps(summary, indent=2))
    return 0
