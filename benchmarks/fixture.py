"""The seed-scale model: a large random-forest classifier, its MLeap bundle and a held-out frame, cached."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np

from scorer.export import export_sklearn

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "fixtures"
SMALL = {"trees": 20, "target_nodes": 2_000}


@dataclass(frozen=True)
class FixturePaths:
    """Where one fixture's files live."""

    model_joblib: Path
    bundle: Path
    frame_json: Path
    meta_json: Path


def _paths(folder: Path) -> FixturePaths:
    return FixturePaths(
        folder / "model.joblib", folder / "bundle.zip", folder / "frame.json", folder / "meta.json"
    )


def synthetic_data(n_rows: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy fraud-like data: float32-representable features and labels with 20% flipped."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_features)).astype(np.float32).astype(np.float64)
    w = rng.normal(size=n_features)
    signal = x @ w + np.sin(3 * x[:, 0]) * x[:, 1 % n_features] + rng.normal(scale=0.5, size=n_rows)
    y = (signal > 0).astype(np.int64)
    flip = rng.random(n_rows) < 0.2
    y[flip] = 1 - y[flip]
    return x, y


def frame_json(x: np.ndarray, names: list[str]) -> dict[str, object]:
    """Rows of doubles as an MLeap JSON LeapFrame."""
    return {"schema": {"fields": [{"name": n, "type": "double"} for n in names]}, "rows": x.tolist()}


def build_fixture(
    trees: int = 250,
    target_nodes: int = 96_000,
    n_features: int = 30,
    rows: int = 10_000,
    seed: int = 0,
    cache_dir: Path = DEFAULT_CACHE,
) -> FixturePaths:
    """Train (or reuse) the forest, export it to protobuf, write a held-out frame and meta.json."""
    from sklearn.ensemble import RandomForestClassifier

    folder = Path(cache_dir) / f"rf-t{trees}-n{target_nodes}-f{n_features}-r{rows}-s{seed}"
    paths = _paths(folder)
    if paths.meta_json.exists():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    # A fully grown bootstrap tree on this noisy data has about 0.3 nodes per training row; a few more
    # rows than that and a leaf cap fix each tree at 2*leaves - 1 ≈ target_nodes nodes.
    train_rows = max(int(target_nodes * 3.6), 1_000)
    x, y = synthetic_data(train_rows + rows, n_features, seed)
    trained = folder / "training.json"
    if paths.model_joblib.exists() and trained.exists():
        # A run that trained but did not finish exporting: keep the (slow) training.
        model = joblib.load(paths.model_joblib)
        train_seconds = float(json.loads(trained.read_text())["training_seconds"])
    else:
        # One candidate feature per split and 60% bootstrap samples cut training from ~6.4 to ~1.2
        # CPU-seconds per seed-scale tree; scoring cost depends on node count and path length, which
        # the leaf cap keeps (95,999 nodes, depth ~43 either way).
        model = RandomForestClassifier(
            n_estimators=trees,
            max_leaf_nodes=(target_nodes + 1) // 2,
            max_features=1,
            max_samples=0.6,
            n_jobs=2,
            random_state=seed,
        )
        started = time.perf_counter()
        model.fit(x[:train_rows], y[:train_rows])
        train_seconds = time.perf_counter() - started
        joblib.dump(model, paths.model_joblib)
        trained.write_text(json.dumps({"training_seconds": train_seconds}))
    names = [f"f{i}" for i in range(n_features)]
    started = time.perf_counter()
    export_sklearn(model, paths.bundle, format="protobuf", features=names, name="seed_forest")
    export_seconds = time.perf_counter() - started
    paths.frame_json.write_text(json.dumps(frame_json(x[train_rows:], names)))
    node_counts = [e.tree_.node_count for e in model.estimators_]
    meta = {
        "trees": trees,
        "nodes": int(sum(node_counts)),
        "nodes_per_tree_mean": float(np.mean(node_counts)),
        "max_depth": int(max(e.tree_.max_depth for e in model.estimators_)),
        "features": n_features,
        "train_rows": train_rows,
        "frame_rows": rows,
        "seed": seed,
        "training_seconds": round(train_seconds, 3),
        "export_seconds": round(export_seconds, 3),
        "bundle_bytes": paths.bundle.stat().st_size,
    }
    # meta.json last: its presence marks a complete fixture for later runs.
    paths.meta_json.write_text(json.dumps(meta, indent=2))
    return paths


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.fixture [--small | --trees N --nodes M]`: build and print the fixture's meta."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fixture", description=build_fixture.__doc__)
    parser.add_argument("--small", action="store_true", help="20 trees of ~2,000 nodes, for CI")
    parser.add_argument("--trees", type=int, default=250)
    parser.add_argument("--nodes", type=int, default=96_000, help="target nodes per tree")
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the held-out frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    trees, nodes = (SMALL["trees"], SMALL["target_nodes"]) if args.small else (args.trees, args.nodes)
    paths = build_fixture(trees, nodes, args.features, args.rows, args.seed, args.cache_dir)
    print(json.dumps({"folder": str(paths.meta_json.parent), **json.loads(paths.meta_json.read_text())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
