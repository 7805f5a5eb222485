"""The bundle runtime on the seed-scale forest, side by side with MLeap's JVM runtime and scikit-learn.

Run: .venv/bin/python -m benchmarks.runtime_bench [--trees 250 --nodes 96000] [--json FILE]

One run measures, on the same bundle and the same rows: protobuf export, cold load (empty compiled
cache), warm load and resident memory (a fresh process, memory-mapped cache), single-row and
batch-of-64 scoring in-process on one thread, scikit-learn's `predict_proba`, and MLeap's JVM runtime
transforming the same rows in-process (the reference harness). Parity is checked in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fixture import DEFAULT_CACHE, FixturePaths, build_fixture

# A fresh interpreter loads the bundle, so load time and memory are not flattered by this process.
_LOAD_PROBE = """
import json, sys, time
import psutil
started = time.perf_counter()
from scorer.bundle import load_bundle
imported = time.perf_counter()
bundle = load_bundle(sys.argv[1])
seconds = time.perf_counter() - imported
info = psutil.Process().memory_full_info()
print(json.dumps({"seconds": seconds, "import_seconds": imported - started,
                  "rss_mb": info.rss / 2**20, "uss_mb": info.uss / 2**20}))
"""


def load_in_fresh_process(bundle: Path, cache_dir: Path) -> dict[str, float]:
    """Seconds of `load_bundle` (and of the imports before it) and memory, in a new interpreter."""
    env = {**os.environ, "RTSCORE_CACHE_DIR": str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_PROBE, str(bundle)], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def summary_ms(seconds: np.ndarray) -> dict[str, float]:
    """avg, p50, p95, p99, max and stddev of per-call seconds, in milliseconds."""
    ms = seconds * 1e3
    return {
        "avg": float(ms.mean()),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "stddev": float(ms.std()),
    }


def time_calls(fn: Any, inputs: list[Any], warmup: int) -> np.ndarray:
    """Per-call wall seconds of `fn(x)` for each input, the first `warmup` calls excluded."""
    for x in inputs[:warmup]:
        fn(x)
    samples = np.empty(len(inputs) - warmup)
    for i, x in enumerate(inputs[warmup:]):
        started = time.perf_counter()
        fn(x)
        samples[i] = time.perf_counter() - started
    return samples


def measure(paths: FixturePaths, n_rows: int, skip_jvm: bool) -> dict[str, Any]:
    """Every figure of the report for one fixture."""
    import joblib

    from scorer.bundle import load_bundle
    from scorer.export import export_sklearn
    from scorer.frame import LeapFrame

    frame = json.loads(paths.frame_json.read_text())
    rows = frame["rows"][:n_rows]
    x = np.asarray(rows, dtype=np.float64)
    report: dict[str, Any] = {"fixture": json.loads(paths.meta_json.read_text())}

    model = joblib.load(paths.model_joblib)
    model.set_params(n_jobs=1)  # one thread, like every other figure here
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        export_sklearn(
            model, Path(tmp) / "export.zip", format="protobuf", features=[f"f{i}" for i in range(x.shape[1])]
        )
        report["export_protobuf_s"] = time.perf_counter() - started
        report["load_cold"] = load_in_fresh_process(paths.bundle, Path(tmp) / "cache")
        report["load_warm"] = load_in_fresh_process(paths.bundle, Path(tmp) / "cache")
        cached = (f.stat().st_size for f in (Path(tmp) / "cache").rglob("*") if f.is_file())
        report["compiled_mb"] = sum(cached) / 2**20

    bundle = load_bundle(paths.bundle)
    one_row = [LeapFrame.from_mleap_json({"schema": frame["schema"], "rows": [r]}) for r in rows]
    report["rtscore_row_ms"] = summary_ms(time_calls(bundle.transform, one_row, warmup=min(200, n_rows // 5)))
    batches = [
        LeapFrame.from_mleap_json({"schema": frame["schema"], "rows": rows[i : i + 64]})
        for i in range(0, len(rows) - 63, 64)
    ]
    batch_s = time_calls(bundle.transform, batches, warmup=2)
    report["rtscore_batch64_rows_per_s"] = float(64 * batch_s.size / batch_s.sum())

    proba = np.array([r[-2]["values"] for r in bundle.transform(LeapFrame.from_mleap_json(
        {"schema": frame["schema"], "rows": rows})).to_mleap_json()["rows"]])  # fmt: skip
    report["max_abs_diff_vs_sklearn"] = float(np.abs(proba - model.predict_proba(x.astype(np.float32))).max())
    sk_inputs = [x[i : i + 1].astype(np.float32) for i in range(min(300, n_rows))]
    report["sklearn_row_ms"] = summary_ms(time_calls(model.predict_proba, sk_inputs, warmup=20))
    del model

    if not skip_jvm:
        from scorer.reference import ReferenceHarness

        sample = {"schema": frame["schema"], "rows": rows}
        with ReferenceHarness() as harness:
            harness.ensure_runnable()
            iterations = max(n_rows, 2000)
            report["mleap_row_ms"] = harness.bench(
                paths.bundle, sample, iterations=iterations, warmup=500, mode="row"
            )
            report["mleap_frame_ms"] = harness.bench(paths.bundle, sample, iterations=iterations, warmup=500)
            batch = harness.bench(paths.bundle, sample, iterations=200, warmup=20, batch=64)
            report["mleap_batch64_rows_per_s"] = 64e3 / batch["latency_ms"]["avg"]
            scored = harness.score(paths.bundle, {"schema": frame["schema"], "rows": rows[:200]})
            jvm = np.array([r[-2]["values"] for r in scored["rows"]])
            report["max_abs_diff_vs_mleap"] = float(np.abs(proba[:200] - jvm).max())
    report["huge_pages"] = os.environ.get("RTSCORE_HUGE_PAGES", "")
    report["machine"] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load": os.getloadavg(),
    }
    return report


def table(report: dict[str, Any]) -> str:
    """The figures as a small text table."""
    r, fx = report, report["fixture"]
    lines = [
        f"fixture: {fx['trees']} trees, {fx['nodes']:,} nodes, max depth {fx['max_depth']}",
        f"export (protobuf): {r['export_protobuf_s']:.1f} s",
        f"cold load: {r['load_cold']['seconds']:.2f} s   warm load: {r['load_warm']['seconds']:.2f} s "
        f"(+{r['load_warm']['import_seconds']:.2f} s imports)   "
        f"warm RSS {r['load_warm']['rss_mb']:.0f} MB (USS {r['load_warm']['uss_mb']:.0f} MB), "
        f"compiled forest {r['compiled_mb']:.0f} MB",
        "single row (ms)      avg     p50     p95     p99  stddev",
    ]
    for name, key in (("rtscore", "rtscore_row_ms"), ("mleap-row", "mleap_row_ms"),
                      ("mleap-frame", "mleap_frame_ms"), ("scikit-learn", "sklearn_row_ms")):  # fmt: skip
        if key in r:
            s = r[key].get("latency_ms", r[key])
            lines.append(
                f"{name:<16}{s['avg']:>8.3f}{s['p50']:>8.3f}{s['p95']:>8.3f}{s['p99']:>8.3f}{s['stddev']:>8.3f}"
            )
    batch = f"batch of 64: rtscore {r['rtscore_batch64_rows_per_s']:,.0f} rows/s"
    parity = f"max |Δ probability|: vs scikit-learn {r['max_abs_diff_vs_sklearn']:.1e}"
    if "mleap_batch64_rows_per_s" in r:
        batch += f", mleap {r['mleap_batch64_rows_per_s']:,.0f} rows/s"
        parity += f", vs MLeap {r['max_abs_diff_vs_mleap']:.1e}"
    lines += [batch, parity]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=250)
    parser.add_argument("--nodes", type=int, default=96_000)
    parser.add_argument("--rows", type=int, default=3000, help="rows scored one at a time")
    parser.add_argument("--no-jvm", action="store_true", help="leave out MLeap's JVM runtime")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    paths = build_fixture(trees=args.trees, target_nodes=args.nodes, cache_dir=DEFAULT_CACHE)
    report = measure(paths, args.rows, args.no_jvm)
    print(table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
