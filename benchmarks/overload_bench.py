"""One scorer process past its capacity: is overload refused, not queued?

Run: .venv/bin/rtscore bench overload [--quick] [--timeout-ms 50] [--seconds 10] [--json FILE]

One scorer process hosts the forest and takes open-loop single-row calls, each with a deadline
(`--timeout-ms`, the extractor's default budget): first at `--normal-rate` (the server's CPU per call at
normal load), then up a ladder of rates to its capacity, the highest rate whose accepted calls keep
p99 <= `--p99-ms` with at most `--max-refused` of the calls failed (a rate fails when two steps at
it fail, since a shared machine's hiccup can fail one); then at `--overload` times that
capacity. The report says, at the overload: the accepted calls' p99, goodput (calls answered OK per
second) over the capacity, and how fast refusals came back (a refusal is a call that failed before
its deadline, whatever its status: the scorer refuses with RESOURCE_EXHAUSTED in Python and CANCELLED
from gRPC's core; calls that ran out of time are counted apart).
`--scorer-arg=--max-pending-calls=0` and the like run the same against other admission settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import clients, report
from benchmarks.compare import fixture_for
from benchmarks.frames import all_doubles, load_leap_frame, score_requests
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.progress import ProgressBar
from benchmarks.server_cpu import cpu_per_call, thread_cpu
from benchmarks.targets import ServerProcess, rtscore_scorer
from rtscore.errors import InvalidArgument

MODEL = "bench"


@dataclass(frozen=True)
class Targets:
    """What the overload must keep: the accepted tail, the goodput share, the refusals' speed."""

    p99_ms: float = 10.0
    goodput_share: float = 0.9
    refusal_p99_ms: float = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `rtscore bench overload`."""
    parser.add_argument("--quick", action="store_true", help="the small forest and short steps (CI)")
    parser.add_argument("--bundle", type=Path, help="bundle to serve (default: the cached fixture)")
    parser.add_argument("--frame", type=Path, help="MLeap JSON frame with the rows (default: the fixture's)")
    parser.add_argument("--timeout-ms", type=float, default=50.0, help="deadline of every call (default 50)")
    parser.add_argument(
        "--seconds", type=float, help="measured seconds per step (default 10; 3 with --quick)"
    )
    parser.add_argument(
        "--normal-rate", type=float, default=500.0, help="the normal-load step (default 500/s)"
    )
    parser.add_argument(
        "--start-rate", type=float, default=500.0, help="the ladder's first rate (default 500/s)"
    )
    parser.add_argument(
        "--step", type=float, default=1.25, help="each ladder rate over the last (default 1.25)"
    )
    parser.add_argument(
        "--max-rate", type=float, default=8000.0, help="the ladder stops here (default 8000/s)"
    )
    parser.add_argument("--p99-ms", type=float, default=10.0, help="capacity: accepted p99 at most this")
    parser.add_argument(
        "--max-refused", type=float, default=0.01, help="capacity: failed share at most this (default 1%%)"
    )
    parser.add_argument(
        "--capacity",
        type=float,
        help="skip the ladder: the capacity (calls/s) measured before, e.g. to compare",
    )
    parser.add_argument("--overload", type=float, default=2.0, help="the overload as a multiple of capacity")
    parser.add_argument(
        "--scorer-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra `rtscore scorer serve` argument, e.g. --scorer-arg=--max-pending-calls=0",
    )
    parser.add_argument("--json", type=Path, help="write the report here, and a PNG beside it")
    clients.add_client_option(parser)


def run(args: argparse.Namespace) -> int:
    """Measure normal load, capacity and overload; print the table and the verdict; write the report."""
    if args.step <= 1.0 or args.overload <= 1.0:
        raise InvalidArgument("--step and --overload must be above 1")
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    fixture = fixture_for(args.quick) if args.bundle is None or args.frame is None else {}
    bundle = Path(args.bundle or fixture["bundle"])
    frame = load_leap_frame(Path(args.frame or fixture["frame"]))
    requests = score_requests(frame, MODEL, 1, dense=all_doubles(frame))
    client = args.client or clients.default_client()
    targets = Targets(p99_ms=args.p99_ms)
    server = rtscore_scorer(bundle, MODEL, 1, args.scorer_arg)
    runs: list[dict[str, Any]] = []
    with server:
        step = _Stepper(server, requests, args.timeout_ms / 1e3, seconds, client)
        step.warm_up()
        runs.append(step.run("normal", args.normal_rate))
        if args.capacity is not None:
            capacity: dict[str, Any] | None = {"rate": args.capacity, "goodput": args.capacity}
        else:
            capacity = ladder(step, args, targets, runs)
        if capacity is None:
            print(f"no ladder rate held p99 <= {targets.p99_ms:g} ms; lower --start-rate", file=sys.stderr)
            overload = None
        else:
            runs.append(step.run("overload", args.overload * capacity["goodput"]))
            overload = verdict(capacity, runs[-1], args.overload, targets)
    facts = {k: v for k, v in fixture.items() if k not in ("model_file", "bundle", "frame")}
    summary = {
        "timeout_ms": args.timeout_ms,
        "scorer_args": args.scorer_arg,
        "capacity": None if capacity is None else {"rate": capacity["rate"], "goodput": capacity["goodput"]},
        "verdict": overload,
    }
    data = report.build_report(runs, facts, overload=summary)
    print()
    print(table(runs))
    if overload is not None:
        print()
        print(verdict_lines(overload))
    if args.json:
        png = report.write_report(data, args.json)
        print(f"wrote {args.json} and {png}")
    return 0


def ladder(
    step: _Stepper, args: argparse.Namespace, targets: Targets, runs: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Step the rate up until it fails; the record of the last rate that passed (None: none did)."""
    capacity = None
    rate = args.start_rate
    while rate <= args.max_rate:
        record = step.run("ladder", rate)
        runs.append(record)
        if not passes(record, targets.p99_ms, args.max_refused):
            # a shared machine's hiccup can fail one step: the rate fails when it fails twice
            record = step.run("ladder", rate)
            runs.append(record)
            if not passes(record, targets.p99_ms, args.max_refused):
                break
        capacity = record
        rate *= args.step
    return capacity


class _Stepper:
    """Runs one open-loop step after another against the same scorer, with its CPU per call."""

    def __init__(
        self,
        server: ServerProcess,
        requests: Sequence[bytes],
        timeout_s: float,
        seconds: float,
        client: clients.Client,
    ) -> None:
        self.server, self.requests, self.timeout_s = server, requests, timeout_s
        self.seconds, self.client = seconds, client

    def warm_up(self) -> None:
        """A few seconds of calls so the forest's pages and the connection are warm."""
        spec = LoadSpec(self.server.target, rate=200.0, duration=2.0, warmup=0.5, timeout=5.0)
        clients.run(spec, self.requests, client=self.client)

    def run(self, phase: str, rate: float) -> dict[str, Any]:
        """One step at `rate`; its report record with the overload figures."""
        assert self.server.process is not None
        spec = LoadSpec(
            self.server.target, rate=rate, duration=self.seconds, warmup=1.0, timeout=self.timeout_s
        )
        speed = report.python_loop_ms()  # this host's speed changes between steps, so each step says it
        before = thread_cpu(self.server.process.pid)
        bar = ProgressBar(f"{phase} @{rate:.0f}/s", clients.expected_seconds(spec))
        try:
            result = clients.run(spec, self.requests, progress=bar, client=self.client)
        finally:
            bar.close()
        sent = int(result.recorder.requests + round(result.achieved_rate * spec.warmup))
        cpu = cpu_per_call(before, thread_cpu(self.server.process.pid), sent)
        name = f"{phase}@{rate:.0f}"
        return report.run_record(
            name, result, phase=phase, server_cpu_ms=cpu, python_loop_ms=speed, **outcome(result)
        )


def outcome(result: RunResult) -> dict[str, Any]:
    """Goodput, the share of calls that failed, and the latency of the refusals among them.

    A refusal is a call that failed before its deadline; one that failed at or past it ran out of time
    (DEADLINE_EXCEEDED, or a refusal that came too late to count as one), counted in `timed_out_share`.
    """
    recorder = result.recorder
    ok = np.asarray(recorder.ok, dtype=bool)
    latency_ms = np.asarray(recorder.latency, dtype=np.float64) * 1e3
    refusal = ~ok & (latency_ms < 1e3 * result.spec.timeout)
    window = result.window_s if result.window_s > 0 else 1.0
    calls = max(ok.size, 1)
    failed = int((~ok).sum())
    out = {
        "goodput": round(float(ok.sum()) / window, 1),
        "failed_share": round(failed / calls, 4),
        "timed_out_share": round(float(failed - refusal.sum()) / calls, 4),
        "refused_ms": _spread(latency_ms[refusal]),
    }
    if len(recorder.waited) == ok.size:
        # The same refusals timed from when each left the client, not from when it was meant to: the
        # server's answer without the client's own queue (the native client says how long each waited).
        waited_ms = np.asarray(recorder.waited, dtype=np.float64) * 1e3
        out["refused_from_send_ms"] = _spread((latency_ms - waited_ms)[refusal])
    return out


def _spread(values_ms: np.ndarray) -> dict[str, float] | None:
    if not values_ms.size:
        return None
    p50, p99 = np.percentile(values_ms, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3), "max": round(float(values_ms.max()), 3)}


def passes(record: dict[str, Any], p99_ms: float, max_refused: float) -> bool:
    """Whether a ladder step is within capacity: accepted p99 and refused share both in bounds."""
    latency = record.get("latency_ms") or {}
    return bool(latency) and latency["p99"] <= p99_ms and record["failed_share"] <= max_refused


def verdict(
    capacity: dict[str, Any], overload: dict[str, Any], factor: float, targets: Targets
) -> dict[str, Any]:
    """The overload's figures against the targets."""
    p99 = (overload.get("latency_ms") or {}).get("p99")
    share = overload["goodput"] / capacity["goodput"] if capacity["goodput"] else 0.0
    refusal_p99 = (overload["refused_ms"] or {}).get("p99")
    from_send_p99 = (overload.get("refused_from_send_ms") or {}).get("p99")
    return {
        "factor": factor,
        "capacity_goodput": capacity["goodput"],
        "offered": overload["rate"],
        "goodput": overload["goodput"],
        "goodput_share": round(share, 3),
        "accepted_p99_ms": p99,
        "failed_share": overload["failed_share"],
        "timed_out_share": overload["timed_out_share"],
        "refusal_p99_ms": refusal_p99,
        "refusal_from_send_p99_ms": from_send_p99,
        # every latency counts from the intended send: the client's own lateness is in each of them
        "client_send_lag_p99_ms": overload.get("client", {}).get("send_lag_ms", {}).get("p99"),
        "errors": overload["errors"],
        "ok": {
            "accepted_p99": p99 is not None and p99 <= targets.p99_ms,
            "goodput": share >= targets.goodput_share,
            "refusals": refusal_p99 is None or refusal_p99 <= targets.refusal_p99_ms,
            "refusals_from_send": from_send_p99 is None or from_send_p99 <= targets.refusal_p99_ms,
        },
    }


def table(runs: Sequence[dict[str, Any]]) -> str:
    """One row per step: offered and good rates, accepted latency, refusals, server CPU per call."""
    header = ["run", "rate/s", "achieved/s", "goodput/s", "p50 ms", "p99 ms", "refused",
              "refused p99 ms", "errors", "cpu ms/call", "loop", "client cpu ms/call",
              "host loop ms"]  # fmt: skip
    rows = []
    for r in runs:
        lat, cpu, refused = r["latency_ms"] or {}, r["server_cpu_ms"], r["refused_ms"] or {}
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "-"
        rows.append([r["name"], r["rate"], r["achieved_rate"], r["goodput"], lat.get("p50"), lat.get("p99"),
                     f"{100 * r['failed_share']:.1f}%", refused.get("p99"), errors, cpu["total"],
                     cpu.get("event_loop"), report.client_cpu(r), r.get("python_loop_ms")])  # fmt: skip
    return report.render_table(header, rows)


def verdict_lines(v: dict[str, Any]) -> str:
    """The overload verdict as sentences."""
    mark = {True: "ok", False: "MISSED"}
    ok = v["ok"]
    lines = [
        f"capacity {v['capacity_goodput']:.0f}/s; at {v['factor']:g}x ({v['offered']:.0f}/s offered):",
        f"  accepted p99 {v['accepted_p99_ms']} ms [{mark[ok['accepted_p99']]}]",
        f"  goodput {v['goodput']:.0f}/s = {100 * v['goodput_share']:.1f}% of capacity "
        f"[{mark[ok['goodput']]}]",
        f"  {100 * v['failed_share']:.1f}% of calls failed; "
        + (
            f"the refusals among them answered at p99 {v['refusal_p99_ms']} ms"
            if v["refusal_p99_ms"] is not None
            else "none refused"
        )
        + f" [{mark[ok['refusals']]}]; {100 * v['timed_out_share']:.1f}% ran out of time",
        f"  (the client's own send lag, in every latency above: p99 {v['client_send_lag_p99_ms']} ms)",
    ]
    from_send = v.get("refusal_from_send_p99_ms")
    if from_send is not None:
        lines.append(
            f"  the refusals timed from when each left the client: p99 {from_send} ms "
            f"[{mark[ok['refusals_from_send']]}]"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.overload_bench`: the same as `rtscore bench overload`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overload_bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
    raise SystemExit(code)
