"""`rtscore bundle export`: a joblib-saved scikit-learn model in, an MLeap bundle out."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from rtscore.errors import InvalidArgument, NotFound


def add_export_parser(bundle_subparsers: Any) -> argparse.ArgumentParser:
    """Add the `export` sub-command to the `rtscore bundle` group's sub-parsers."""
    parser: argparse.ArgumentParser = bundle_subparsers.add_parser(
        "export",
        help="write a joblib-saved scikit-learn model or pipeline as an MLeap bundle",
        description="Write a joblib-saved scikit-learn model or pipeline as an MLeap bundle (Bundle.ML).",
    )
    parser.add_argument("model", type=Path, metavar="MODEL.joblib", help="joblib file of a fitted estimator")
    parser.add_argument("--out", type=Path, required=True, help="bundle path: BUNDLE.zip, or a directory")
    parser.add_argument("--format", choices=("protobuf", "json"), default="protobuf")
    parser.add_argument("--features", default=None, help="comma-separated input names (default f0..f{n-1})")
    parser.add_argument("--name", default=None, help="bundle name (default: the estimator's class)")
    parser.set_defaults(func=handle_export)
    return parser


def bundle_digest(path: Path) -> str:
    """sha256 of a zip's bytes, or of a directory's files concatenated in sorted path order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def handle_export(args: argparse.Namespace) -> int:
    """Load the model, write the bundle and print a one-line JSON summary."""
    import joblib

    from scorer.export.translate import build_graph
    from scorer.export.writer import write_bundle

    if not args.model.is_file():
        raise NotFound(f"{args.model}: no such model file")
    try:
        estimator = joblib.load(args.model)
    except Exception as err:  # unpickling can fail in many library-specific ways
        raise InvalidArgument(
            f"{args.model}: not a joblib-saved model ({type(err).__name__}: {err})"
        ) from None
    features = [f.strip() for f in args.features.split(",")] if args.features else None
    started = time.perf_counter()
    root = build_graph(estimator, features, args.name or type(estimator).__name__.lower())
    out = write_bundle(root, args.out, name=root.name, fmt=args.format)
    seconds = time.perf_counter() - started
    summary = {
        "path": str(out),
        "format": args.format,
        "sha256": bundle_digest(out),
        "nodes": root.count_tree_nodes(),
        "seconds": round(seconds, 3),
    }
    print(json.dumps(summary))
    return 0
