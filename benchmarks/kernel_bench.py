"""Measure the compiled forest kernel on a seed-scale random forest against scikit-learn.

Run: .venv/bin/python -m benchmarks.kernel_bench [--trees 250 --rows 200000 --features 30]
The trained model is kept under .cache/kernel_bench/ so it is built once per size.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ROOT = Path(".cache/kernel_bench")


def train_or_load(n_trees: int, n_rows: int, n_features: int, seed: int) -> tuple[Any, np.ndarray]:
    """A fitted RandomForestClassifier (cached with joblib) and float32-representable rows to score."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    path = CACHE_ROOT / f"rf-{n_trees}-{n_rows}-{n_features}-{seed}.joblib"
    if path.exists():
        model = joblib.load(path)
    else:
        # a noisy label keeps trees deep: roughly 90-100k nodes per tree at 200k rows
        signal = x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2
        labels = (signal + rng.normal(scale=1.5, size=n_rows) > 0).astype(np.int64)
        started = time.perf_counter()
        model = RandomForestClassifier(
            n_estimators=n_trees, min_samples_leaf=1, max_features="sqrt", n_jobs=2, random_state=seed
        ).fit(x, labels)
        print(f"trained {n_trees} trees in {time.perf_counter() - started:.1f} s", flush=True)
        CACHE_ROOT.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, path)
    rows = rng.normal(size=(4096, n_features)).astype(np.float32).astype(np.float64)
    return model, rows


def percentiles(samples_ns: np.ndarray) -> str:
    """avg / p50 / p99 / max in milliseconds."""
    ms = samples_ns / 1e6
    return (
        f"avg {ms.mean():.3f} ms  p50 {np.percentile(ms, 50):.3f} ms  "
        f"p99 {np.percentile(ms, 99):.3f} ms  max {ms.max():.3f} ms"
    )


def single_row_latency(score: Any, rows: np.ndarray, n: int) -> tuple[np.ndarray, float]:
    """Per-call wall time of scoring one row at a time, in ns, and the mean CPU time per call in ms."""
    samples = np.empty(n, dtype=np.int64)
    cpu = time.process_time()
    for i in range(n):
        row = rows[i % len(rows) : i % len(rows) + 1]
        started = time.perf_counter_ns()
        score(row)
        samples[i] = time.perf_counter_ns() - started
    return samples, (time.process_time() - cpu) / n * 1e3


def warm_load(cache_dir: Path, key: str) -> dict[str, float]:
    """In a fresh process: import and open times of the cached forest, first-row latency, memory."""
    code = f"""
import time
started = time.perf_counter()
import json, numpy as np, psutil
from scorer.trees import ForestCache
imported = time.perf_counter() - started
started, cpu = time.perf_counter(), time.process_time()
forest = ForestCache({str(cache_dir)!r}).get_or_compile({key!r}, lambda: 1 / 0, None)
loaded, loaded_cpu = time.perf_counter() - started, time.process_time() - cpu
row = np.zeros((1, forest.n_features))
started = time.perf_counter()
forest.sum_leaves(row)
first = time.perf_counter() - started
rng = np.random.default_rng(1)
forest.sum_leaves(rng.normal(size=(2000, forest.n_features)))
info = psutil.Process().memory_full_info()
print(json.dumps({{"import_s": imported, "load_s": loaded, "load_cpu_s": loaded_cpu,
                  "first_row_ms": first * 1e3, "rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trees", type=int, default=250)
    parser.add_argument("--rows", type=int, default=200_000, help="training rows")
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--distinct",
        type=int,
        default=None,
        help="train only this many trees and repeat them up to --trees (each copy stored separately)",
    )
    parser.add_argument("--single", type=int, default=5000, help="single-row calls to time")
    parser.add_argument("--sklearn-single", type=int, default=100, help="single-row scikit-learn calls")
    parser.add_argument("--lanes", default="16,32,64", help="lockstep widths to compare")
    args = parser.parse_args(argv)

    from scorer.export.treewire import encode_tree_pb, tree_from_sklearn
    from scorer.trees import ForestCache, compile_forest, decode_tree_pb
    from scorer.trees.forest import CompiledForest

    distinct = args.distinct or args.trees
    model, rows = train_or_load(distinct, args.rows, args.features, args.seed)
    if distinct != args.trees:
        # copies are separate objects at separate addresses, so memory traffic is that of distinct trees
        copies = [copy.deepcopy(est) for _ in range(-(-args.trees // distinct)) for est in model.estimators_]
        model.estimators_ = copies[: args.trees]
        model.n_estimators = args.trees
        print(f"{distinct} trained trees repeated to {args.trees}")
    model.set_params(n_jobs=1)
    trees = []
    for estimator in model.estimators_:
        counts = estimator.tree_.value[:, 0, :]
        trees.append(tree_from_sklearn(estimator.tree_, counts / counts.sum(axis=1, keepdims=True)))
    n_nodes = sum(t.n_nodes for t in trees)
    print(f"forest: {len(trees)} trees, {n_nodes:,} nodes ({n_nodes / len(trees):,.0f}/tree)")

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    files = [encode_tree_pb(t) for t in trees]
    decode_tree_pb(files[0], "warm-up")
    started, cpu = time.perf_counter(), time.process_time()
    decoded = [decode_tree_pb(data, f"tree{i}.pb") for i, data in enumerate(files)]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    size_mb = sum(len(f) for f in files) / 2**20
    print(f"pb decode: {seconds:.2f} s wall, {cpu:.2f} s CPU for {size_mb:.0f} MB "
          f"({n_nodes / cpu / 1e6:.1f} M nodes per CPU second)")  # fmt: skip

    started, cpu = time.perf_counter(), time.process_time()
    forest = compile_forest(decoded, None)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"compile: {seconds:.2f} s wall, {cpu:.2f} s CPU; packed size {forest.nbytes / 2**20:.0f} MB, "
          f"max depth {forest.max_depth}")  # fmt: skip

    summed = forest.sum_leaves(rows[:1000])
    error = np.abs(summed / summed.sum(axis=1, keepdims=True) - model.predict_proba(rows[:1000])).max()
    print(f"max |probability - scikit-learn| over 1000 rows: {error:.2e}")

    for lanes in [int(v) for v in args.lanes.split(",")]:
        variant = CompiledForest(forest.arrays, lanes=lanes)
        samples, cpu_ms = single_row_latency(variant.sum_leaves, rows, args.single)
        print(f"single row, {lanes:>2} trees in lockstep: {percentiles(samples)}  CPU {cpu_ms:.3f} ms/row")

    started, cpu = time.perf_counter(), time.process_time()
    batches = 0
    while time.perf_counter() - started < 5.0:
        start = (batches * 64) % (len(rows) - 64)
        forest.sum_leaves(rows[start : start + 64])
        batches += 1
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"batch of 64: {batches * 64 / seconds:,.0f} rows/s wall, "
        f"{batches * 64 / cpu:,.0f} rows per CPU second"
    )

    samples, cpu_ms = single_row_latency(model.predict_proba, rows.astype(np.float32), args.sklearn_single)
    print(
        f"scikit-learn predict_proba single row (n_jobs=1): {percentiles(samples)}  CPU {cpu_ms:.3f} ms/row"
    )

    cache_dir = CACHE_ROOT / "forests"
    key = f"rf-{args.trees}-{distinct}-{args.rows}-{args.features}-{args.seed}"
    started = time.perf_counter()
    ForestCache(cache_dir).get_or_compile(key, lambda: decoded, None)
    print(f"cache get_or_compile (store or hit): {time.perf_counter() - started:.2f} s")
    os.sync()
    warm = warm_load(cache_dir, key)
    print(
        f"warm load in a fresh process: import {warm['import_s'] * 1e3:.0f} ms, get_or_compile "
        f"{warm['load_s'] * 1e3:.0f} ms ({warm['load_cpu_s'] * 1e3:.0f} ms CPU), "
        f"first row {warm['first_row_ms']:.2f} ms, "
        f"RSS {warm['rss_mb']:.0f} MB (USS {warm['uss_mb']:.0f} MB) after 2000 rows"
    )
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
