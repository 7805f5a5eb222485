"""`rtscore demo`: the whole platform in one command (what `./dev run` shows after set-up)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add `rtscore demo`."""
    p = subparsers.add_parser(
        name,
        help=help_text,
        description="Start a registry, scorers following pool fraud in production, an extractor and a"
        " shadow worker; train and register two models; drive open-loop traffic through the extractor;"
        " evaluate the candidate from its shadow rows and promote it while the traffic flows; report the"
        " latency, the evaluation, the model's history and the calls that failed.",
    )
    p.add_argument(
        "--duration", type=float, default=60.0, metavar="S", help="seconds of traffic (default 60)"
    )
    p.add_argument(
        "--rate", type=float, default=200.0, metavar="R", help="transactions per second (default 200)"
    )
    p.add_argument(
        "--keep", action="store_true", help="leave the parts running and say how to reach and stop them"
    )
    p.add_argument("--json", type=Path, metavar="F", help="write the report here (and the PNG beside it)")
    p.add_argument(
        "--png",
        type=Path,
        metavar="F",
        help="where the PNG goes (default beside --json, else ./rtscore-demo.png)",
    )
    p.add_argument("--workdir", type=Path, help="keep transactions, bundles, tokens and logs here")
    p.add_argument("--scorers", type=int, default=2, help="scorer processes following the pool (default 2)")
    p.add_argument(
        "--shadow-fraction", type=float, default=0.5, help="share of cards copied to the shadow tier"
    )
    p.add_argument("--train-count", type=int, default=20_000, help="generated transactions to train on")
    p.add_argument("--client", choices=["go", "python"], help="load client (default: go where built)")
    p.set_defaults(func=_demo)


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP end the demo as Ctrl-C does: its children are stopped on the way out."""
    raise KeyboardInterrupt


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from rtscore.demo.conductor import DemoOptions, run_demo

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    options = DemoOptions(
        duration_s=args.duration,
        rate=args.rate,
        keep=args.keep,
        json_path=args.json,
        png_path=args.png,
        workdir=args.workdir,
        scorers=args.scorers,
        shadow_fraction=args.shadow_fraction,
        train_count=args.train_count,
        client=args.client,
    )
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console = Console(file=sys.stdout, highlight=False, width=130)  # logs and pipes: wide tables
    report = run_demo(options, console)
    promoted = bool(report["promotions"])
    if not promoted:
        console.print("[bold red]no promotion happened[/]: see the stage above")
    return 0 if promoted and report["failed_calls"] == 0 else 1
