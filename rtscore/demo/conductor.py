"""`rtscore demo`: a model's life from training to a live promotion, on the whole platform, in one run.

The conductor starts the parts (see `platform.py`), takes two models through the registry (`models.py`),
drives traffic through the extractor (`traffic.py`), evaluates the candidate from its shadow rows,
promotes it while the traffic flows, and reports (`report.py`). Whatever ends the run (the end, an error,
Ctrl-C) the children are stopped in reverse order and the run's database is dropped, unless `keep`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from rtscore.demo import report as reporting
from rtscore.demo.children import Children, end_stray_processes
from rtscore.demo.models import Governance, Trained, generate_both, train_both, write_labels
from rtscore.demo.platform import (
    GATE,
    MODEL,
    Platform,
    create_database,
    create_tokens,
    drop_database,
    ensure_services,
)
from rtscore.demo.traffic import LoadThread, Probe, ShadowWatch
from rtscore.errors import FailedPrecondition, RtscoreError, Unavailable

# Share of the run that passes before the candidate is evaluated, and after which it is too late to.
# From 0.4 the evaluation reads a fifth of the run's rows past the cold start (below), over a thousand
# in a 60 s run: PSI is unstable on a few hundred rows of scores this close to zero.
EVALUATE_FROM, EVALUATE_UNTIL = 0.4, 0.75
# The extractor's velocity store starts empty with the demo, so the traffic's first part is mostly
# first sightings of cards, a cold start production never has; the evaluation reads the rows after it.
# Measured offline on the demo's traffic: two forests of v1's recipe and two seeds differ by a PSI of
# 0.22 on the first 2,048 shadow rows, and by under 0.01 on all of them.
WARM_FROM = 0.2
# Shadow rows of the candidate wanted before evaluating: the gate's minimum and some margin.
ROWS_WANTED = GATE["min_sample_size"] + 20
# A promotion needs this much traffic left after it, or it would not be a promotion under traffic.
TRAFFIC_AFTER_S = 3.0


@dataclass(frozen=True)
class DemoOptions:
    """What `rtscore demo` was asked for."""

    duration_s: float = 60.0
    rate: float = 200.0
    keep: bool = False
    json_path: Path | None = None
    png_path: Path | None = None
    workdir: Path | None = None
    scorers: int = 2
    shadow_fraction: float = 0.5
    train_count: int = 20_000
    client: str | None = None


@dataclass
class Stages:
    """How long each stage took, for the report."""

    started: float = field(default_factory=time.monotonic)
    done: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, console: Console, stage: str, detail: str = "") -> None:
        """Record and print that `stage` finished."""
        now = time.monotonic()
        last = self.done[-1]["at_s"] if self.done else 0.0
        at = round(now - self.started, 2)
        self.done.append({"stage": stage, "at_s": at, "seconds": round(at - last, 2), "detail": detail})
        console.print(f"[bold green]✓[/] {stage} [dim]({at - last:.1f} s)[/] {detail}")


def run_demo(options: DemoOptions, console: Console) -> dict[str, Any]:
    """Run the whole demo; returns the report (also written to `options.json_path` if given)."""
    if options.duration_s < 10:
        raise FailedPrecondition("the demo needs at least 10 s of traffic to evaluate and promote")
    work = options.workdir or Path(tempfile.mkdtemp(prefix="rtscore-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    stages = Stages()
    services = ensure_services()
    # Like `./dev run`, the demo leaves the local services running: other work may share them.
    how = "started; `rtscore services down` stops them" if services.started_here else "reused"
    stages.mark(console, "services", f"Postgres, Kafka, Redis ({how})")
    database_url = asyncio.run(create_database(services.database_url))
    platform = Platform(work, services, database_url, Children(work / "logs", env={}))
    kept = False
    try:
        with platform.children:
            report = _run(options, console, platform, stages)
            if options.keep:
                _print_keep(console, platform)
                platform.children.detach()
                kept = True
            count, began = len(platform.children.running), time.monotonic()
        if not kept:
            each = ", ".join(f"{name} {seconds:.1f} s" for name, _, seconds in platform.children.stopped)
            console.print(
                f"stopped {count} processes, last started first, in {time.monotonic() - began:.1f} s:"
            )
            console.print(f"  {each}")
        return report
    finally:
        if not kept:
            strays = end_stray_processes()
            if strays:
                console.print(f"ended {len(strays)} more processes this run had started: {strays}")
            asyncio.run(drop_database(services.database_url, database_url))
            if options.workdir is None:
                shutil.rmtree(work, ignore_errors=True)


def _run(options: DemoOptions, console: Console, platform: Platform, stages: Stages) -> dict[str, Any]:
    platform.start_registry()
    platform.tokens = asyncio.run(create_tokens(platform.database_url, platform.work))
    stages.mark(
        console, "registry", f"{platform.registry}, tokens for an author, an approver and the platform"
    )

    # The scorers and the shadow worker boot while the models train: they follow the registry anyway.
    shadow = platform.spawn_shadow_worker()
    scorer_children = platform.spawn_scorers(options.scorers)
    live_count = int(options.rate * options.duration_s * 1.05) + 500
    files = generate_both(platform, {"training": (options.train_count, 11), "live": (live_count, 29)})
    training, traffic = files["training"], files["live"]
    labels = write_labels(traffic, platform.work / "labels.jsonl")
    stages.mark(console, "transactions", f"{options.train_count} to train on, {live_count} of live traffic")
    v1, v2 = train_both(platform, training)
    stages.mark(
        console,
        "training",
        ", ".join(
            f"{t.recipe.version_label} AUC {t.report.get('held_out_auc')}"
            f" (average precision {t.report.get('held_out_average_precision')})"
            for t in (v1, v2)
        ),
    )

    governance = Governance(platform)
    governance.register(v1)
    governance.register(v2)
    governance.launch_v1(v1)
    governance.stage_v2(v2)
    stages.mark(console, "lifecycle", f"fraud@{v1.version} champion in production, fraud@{v2.version} shadow")

    platform.wait_scorers(scorer_children)
    platform.wait_shadow_worker(shadow)
    platform.start_extractor(None, options.shadow_fraction)
    requests = _serialized(traffic)
    _wait_first_decision(platform.extractor, requests[-1], v1.version)
    stages.mark(console, "platform", f"scorers {', '.join(platform.scorers)}; extractor {platform.extractor}")

    result, evaluation, promotions, probe = _drive(
        options, console, platform, governance, requests, labels, v1, v2
    )
    stages.mark(console, "traffic", f"{result.recorder.requests} calls")

    report = _report(options, platform, governance, result, evaluation, promotions, probe, v1, v2)
    report["stages"] = stages.done
    reporting.print_report(console, report)
    console.print(f"PNG: {report['png']}")
    if options.json_path is not None:
        reporting.write_json(options.json_path, report)
        console.print(f"JSON: {options.json_path}")
    return report


def _serialized(path: Path) -> list[bytes]:
    from extractor.generate import read_jsonl
    from extractor.transactions import transaction_from_json

    return [transaction_from_json(line).SerializeToString() for line in read_jsonl(path)]


def _wait_first_decision(target: str, request: bytes, version: int, timeout_s: float = 90.0) -> None:
    """Block until the extractor answers a transaction with `version` (the scorers loaded it)."""
    import grpc

    from protos.rtscore.v1 import extractor_pb2

    deadline = time.monotonic() + timeout_s
    last = ""
    with grpc.insecure_channel(target) as channel:
        evaluate = channel.unary_unary(
            "/rtscore.v1.Extractor/Evaluate", response_deserializer=extractor_pb2.Decision.FromString
        )
        while time.monotonic() < deadline:
            try:
                decision = evaluate(request, timeout=2.0)
                if decision.version == str(version):
                    return
                last = f"answered by version {decision.version}"
            except grpc.RpcError as err:
                last = f"{err.code().name}: {err.details()}"
            time.sleep(0.2)
    raise Unavailable(
        f"the extractor at {target} did not answer with fraud@{version} in {timeout_s:g} s: {last}"
    )


def _drive(
    options: DemoOptions,
    console: Console,
    platform: Platform,
    governance: Governance,
    requests: list[bytes],
    labels: Path,
    v1: Trained,
    v2: Trained,
) -> tuple[Any, dict[str, Any], list[dict[str, Any]], Probe]:
    """Open-loop traffic for the whole duration; the candidate evaluated and promoted in its middle."""
    from benchmarks.clients import default_client
    from shadow.settings import ShadowSettings

    client = options.client or default_client()
    load = LoadThread(platform.extractor, requests[:-500], options.rate, options.duration_s, client)
    load.start()
    origin = time.monotonic()
    probe = Probe(platform.extractor, requests[-500:], origin)
    probe.start()
    watch = ShadowWatch(
        ShadowSettings(
            database_url=platform.database_url,
            kafka_bootstrap=platform.services.kafka_bootstrap,
            topic=platform.shadow_topic,
            group=platform.shadow_group,
        )
    )
    watch.start()
    stage = f"v2 in shadow, waiting for {ROWS_WANTED} shadow rows"
    evaluation: dict[str, Any] = {}
    promotions: list[dict[str, Any]] = []
    pending: concurrent.futures.Future[dict[str, Any]] | None = None
    warm: tuple[datetime, int] | None = None  # when the cold start ended, and the rows stored by then
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        with Live(console=console, refresh_per_second=4, transient=not console.is_terminal) as live:
            while load.alive:
                now_s = time.monotonic() - (load.started_at or origin)
                if warm is None and now_s >= WARM_FROM * options.duration_s:
                    warm = datetime.now(UTC), watch.rows.get(v2.version, 0)
                if pending is None and not evaluation and not promotions:
                    since, before = warm or (None, 0)
                    ready = since is not None and watch.rows.get(v2.version, 0) - before >= ROWS_WANTED
                    if ready and now_s >= EVALUATE_FROM * options.duration_s:
                        stage = f"evaluating fraud@{v2.version} against fraud@{v1.version}"
                        pending = pool.submit(governance.evaluate, v2.version, labels, since)
                    elif now_s > EVALUATE_UNTIL * options.duration_s:
                        stage = f"too few shadow rows for an evaluation ({watch.rows.get(v2.version, 0)})"
                        evaluation = {"error": stage}
                elif pending is not None and pending.done():
                    evaluation, pending = pending.result(), None
                    if now_s > options.duration_s - TRAFFIC_AFTER_S:
                        stage = f"evaluated too late ({now_s:.1f} s) to promote under traffic"
                    else:
                        stage, promotion = _promote(governance, evaluation, load, origin, v1, v2)
                        if promotion is not None:
                            promotions.append(promotion)
                live.update(_progress(load, probe, watch, now_s, options, stage))
                time.sleep(0.25)
            live.update(
                _progress(load, probe, watch, time.monotonic() - (load.started_at or origin), options, stage)
            )
        result = load.join()
        if pending is not None:  # finished after the traffic: reported, too late to promote under it
            evaluation = pending.result()
            console.print(f"evaluation finished after the traffic ended: {stage}")
    finally:
        probe.stop()
        watch.stop()
        pool.shutdown(wait=True)
    for promotion in promotions:
        seen = probe.first_answer_from(v2.version, promotion["at_s"])
        promotion["served_after_s"] = None if seen is None else round(seen - promotion["at_s"], 3)
        promotion["failed_calls_around"] = reporting.failed_between(
            result, promotion["at_s"] - 1.0, promotion["at_s"] + 5.0
        )
    return result, evaluation, promotions, probe


def _promote(
    governance: Governance,
    evaluation: dict[str, Any],
    load: LoadThread,
    origin: float,
    v1: Trained,
    v2: Trained,
) -> tuple[str, dict[str, Any] | None]:
    recorded = evaluation.get("recorded") or {}
    if not recorded.get("passed"):
        return f"fraud@{v2.version} failed its evaluation: {recorded.get('verdict')}", None
    at = time.monotonic() - (load.started_at or origin)
    try:
        governance.promote(v2.version, "passed its shadow evaluation on live traffic")
    except RtscoreError as err:
        return f"the gate refused fraud@{v2.version}: {err}", None
    promotion = {"from_version": v1.version, "to_version": v2.version, "at_s": round(at, 3), "by": "riley"}
    return f"fraud@{v2.version} promoted at {at:.1f} s; traffic keeps flowing", promotion


def _progress(
    load: LoadThread, probe: Probe, watch: ShadowWatch, now_s: float, options: DemoOptions, stage: str
) -> Any:
    recent = probe.recent(now_s)
    table = Table(title=f"live traffic: {now_s:5.1f} / {options.duration_s:g} s", show_header=True)
    for column in ("rate /s", "ok", "failed", "p50 ms", "p99 ms", "serving", "shadow lag", "shadow rows"):
        table.add_column(column, justify="right")
    rate = load.ok / load.elapsed_s if load.elapsed_s > 0 else 0.0
    rows = ", ".join(f"v{v}: {n}" for v, n in sorted(watch.rows.items())) or "-"
    table.add_row(
        f"{rate:.0f} of {options.rate:g}",
        str(load.ok),
        str(load.failed),
        "-" if recent["p50"] is None else f"{recent['p50']:.2f}",
        "-" if recent["p99"] is None else f"{recent['p99']:.2f}",
        f"{MODEL}@{recent['version']}" if recent["version"] else "-",
        "-" if watch.lag is None else str(watch.lag),
        rows,
    )
    return Group(table, f"[dim]latency: probe calls of the last 5 s[/]  {stage}")


def _report(
    options: DemoOptions,
    platform: Platform,
    governance: Governance,
    result: Any,
    evaluation: dict[str, Any],
    promotions: list[dict[str, Any]],
    probe: Probe,
    v1: Trained,
    v2: Trained,
) -> dict[str, Any]:
    from shadow.queries import score_rows

    rows = asyncio.run(score_rows(platform.database_url, MODEL, v2.version, 1_000_000))
    scores = {
        f"v{v1.version} (champion, live)": [float(r["champion_score"]) for r in rows],
        f"v{v2.version} (candidate, shadow)": [float(r["score"]) for r in rows],
    }
    png = options.png_path or (options.json_path.with_suffix(".png") if options.json_path else None)
    png = png or Path.cwd() / "rtscore-demo.png"
    reporting.write_png(png, result, promotions, scores)
    latency = reporting.latency_ms(result)
    probe_errors = Counter(c.code for c in probe.calls if not c.ok)
    return {
        "latency_ms": latency,
        "evaluation": evaluation,
        "promotions": promotions,
        "failed_calls": int(latency["failed"]) + sum(probe_errors.values()),
        "probe": {"calls": len(probe.calls), "errors": dict(probe_errors)},
        "events": governance.history(),
        **_extractor_counts(platform),
        "reference_ms": reporting.REFERENCE_MS,
        "training": {f"v{t.version}": t.report for t in (v1, v2)},
        "platform": {
            "registry": platform.registry,
            "scorers": platform.scorers,
            "extractor": platform.extractor,
            "shadow_topic": platform.shadow_topic,
            "database": platform.database_url,
            "pids": {child.name: child.pid for child in platform.children.running},
        },
        "png": str(png),
    }


def _extractor_counts(platform: Platform) -> dict[str, Any]:
    """`extractor_counts`: what the extractor counted over the run (velocity fallbacks, retries on
    another scorer, hedges, ejections, shadow copies dropped, failed calls by code), from its Prometheus
    endpoint; None, with `extractor_counts_error` saying why, where it could not be read."""
    from benchmarks.tier_counts import read_extractor_counts

    port = platform.metrics.get("extractor")
    if port is None:
        return {"extractor_counts": None, "extractor_counts_error": "the extractor named no metrics port"}
    counts, why = read_extractor_counts([port])
    if counts is None:
        return {"extractor_counts": None, "extractor_counts_error": f"port {port}: {why}"}
    return {"extractor_counts": {name: round(n) for name, n in counts.items()}}


def _print_keep(console: Console, platform: Platform) -> None:
    """How to reach each part that keeps running, and how to stop it."""
    table = Table(title="still running (--keep)")
    for column in ("part", "pid", "where", "log"):
        table.add_column(column)
    addresses = {"registry": platform.registry, "extractor": platform.extractor}
    addresses.update({f"scorer-{i + 1}": a for i, a in enumerate(platform.scorers)})
    addresses["shadow-worker"] = f"topic {platform.shadow_topic}"
    for child in platform.children.running:
        table.add_row(child.name, str(child.pid), addresses.get(child.name, ""), str(child.log))
    console.print(table)
    pids = " ".join(str(c.pid) for c in reversed(platform.children.running))
    env = platform.env
    database = platform.database_url.rsplit("/", 1)[-1]
    wanted = ("RTSCORE_REGISTRY", "RTSCORE_DATABASE_URL", "RTSCORE_KAFKA_BOOTSTRAP", "RTSCORE_REDIS_URL")
    exports = " ".join(f"{k}={env[k]}" for k in wanted if k in env)
    console.print(
        "Reach them:\n"
        f"  export {exports}\n"
        f"  export RTSCORE_TOKEN=$(cat {platform.tokens['approver']})   # riley, approver\n"
        f"  rtscore registry history fraud\n"
        f"  head -1 {platform.work / 'live.jsonl'} |\n"
        f"    rtscore evaluate --target {platform.extractor} --transaction -\n"
        f"  rtscore registry watch --env production --pool fraud --members\n"
        f"  rtscore shadow status --topic {platform.shadow_topic} --group {platform.shadow_group}\n"
        "Stop them (last started first; each drains on SIGTERM):\n"
        f"  for pid in {pids}; do kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 0.2; done; done\n"
        "Then drop the run's database:\n"
        f"  psql '{platform.services.database_url}' -c 'DROP DATABASE \"{database}\" WITH (FORCE)'",
        soft_wrap=True,
    )
