"""One comparison session: start the targets, find a common rate, run them alternately, time MLeap."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from benchmarks import clients, report
from benchmarks.frames import score_requests
from benchmarks.loadgen import LoadSpec, RunResult
from benchmarks.progress import ProgressBar
from benchmarks.rounds import alternate, warmup_for
from benchmarks.targets import (
    ServerProcess,
    connections_for,
    floor_server,
    mleap_served,
    rtscore_scorer,
    sklearn_server,
)
from rtscore.errors import RtscoreError

if TYPE_CHECKING:
    from benchmarks.compare import Plan

MODEL_NAME = "bench"
P99_LIMIT_MS = 10.0
# Past this fraction of failed calls a rate is not sustained, whatever the latency.
_ERROR_BUDGET = 0.01


class CompareSession:
    """Owns the target servers of one `rtscore bench compare` and measures them."""

    def __init__(
        self,
        fixture: dict[str, Any],
        frame: dict[str, Any],
        plan: Plan,
        batch: int,
        say: Callable[[str], None],
        client: clients.Client | None = None,
    ) -> None:
        self.fixture = fixture
        self.frame = frame
        self.plan = plan
        self.batch = batch
        self.say = say
        self.client = client
        self.requests = score_requests(frame, MODEL_NAME, batch)
        self.servers: dict[str, ServerProcess] = {}
        self.skipped: dict[str, str] = {}
        self.speeds: list[float] = []  # the machine's speed at the start of each round
        self._stack = ExitStack()

    def __enter__(self) -> CompareSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stack.close()

    def start(self, names: list[str]) -> dict[str, str]:
        """Start every requested gRPC target; those that cannot start are returned with the reason."""
        launched: dict[str, ServerProcess] = {}
        for name in names:
            if name == "mleap":
                continue
            try:
                server = self._server(name)
            except RtscoreError as err:
                self.skipped[name] = str(err)
                continue
            self.say(f"starting {name}: {' '.join(server.command[1:])}")
            server.launch()
            self._stack.callback(server.stop)
            launched[name] = server
        if "mleap" in names:
            self._check_mleap()  # builds the JVM harness if needed while the servers boot
        for name, server in launched.items():
            try:
                server.wait_ready()
                self.servers[name] = server
            except RtscoreError as err:
                self.skipped[name] = str(err)
        return self.skipped

    def _server(self, name: str) -> ServerProcess:
        if name == "before":
            return sklearn_server(Path(self.fixture["model_file"]))
        bundle = self.fixture.get("bundle")
        if not bundle:
            what = {"floor": "the floor's reply", "mleap-served": "MLeap served"}.get(
                name, "the rtscore scorer"
            )
            raise RtscoreError(f"no bundle given (--bundle) for {what}")
        if name == "floor":
            return floor_server(Path(bundle), Path(self.fixture["frame"]), MODEL_NAME)
        if name == "mleap-served":
            self.say("checking mleap-served (jvm/served; built with Maven when stale)")
            return mleap_served(Path(bundle), MODEL_NAME)
        return rtscore_scorer(Path(bundle), MODEL_NAME, workers=int(name.split("-")[1]))

    def _check_mleap(self) -> None:
        try:
            from scorer.reference import ReferenceHarness
        except ImportError as err:
            self.skipped["mleap"] = f"the reference harness is not available: {err}"
            return
        if not self.fixture.get("bundle"):
            self.skipped["mleap"] = "no bundle given (--bundle) for MLeap's runtime"
            return
        harness = ReferenceHarness()
        if harness.layout.is_built():
            return
        self.say("building the MLeap reference harness with Maven (first use only)")
        try:
            harness.build()
        except RtscoreError as err:
            self.skipped["mleap"] = str(err)

    def _load(self, name: str, rate: float | None, seconds: float, warmup: float, seed: int) -> RunResult:
        target = self.servers[name].target
        workers = int(name.split("-")[1]) if name.startswith("rtscore-") else 1
        channels = connections_for(workers)
        if rate is None:
            spec = LoadSpec(target, mode="closed", duration=seconds, warmup=warmup, channels=channels)
        else:
            spec = LoadSpec(target, rate=rate, duration=seconds, warmup=warmup, seed=seed, channels=channels)
        label = f"{name} {'closed' if rate is None else f'@{rate:g}/s'}"
        bar = ProgressBar(label, clients.expected_seconds(spec))
        try:
            return clients.run(spec, self.requests, 1, bar, self.client)
        finally:
            bar.close()

    def _warm_jvm(self, name: str) -> None:
        """Back-to-back calls from two callers until HotSpot has compiled the transform's hot paths."""
        seconds = self.plan.jvm_warmup
        self.say(f"warming {name}'s JVM: {seconds:g} s of back-to-back calls from two callers")
        spec = LoadSpec(self.servers[name].target, mode="closed", concurrency=2, duration=seconds, warmup=0.0)
        clients.run(spec, self.requests, 1)

    def measure(self, rate: float | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Alternating open-loop runs of every started target at one common rate, then rtscore's extras."""
        from benchmarks.compare import nice_rate

        names = list(self.servers)
        if not names:
            return [], {"rate": 0.0, "reason": "no gRPC target started"}
        note: dict[str, Any]
        if "mleap-served" in names:
            self._warm_jvm("mleap-served")
        if rate is None:
            capacity = {
                n: self._load(n, None, self.plan.probe_seconds, min(self.plan.warmup, 0.5), 0).achieved_rate
                for n in names
            }
            slowest = min(capacity, key=lambda n: capacity[n])
            rate = nice_rate(capacity[slowest] / 2)
            reason = f"half of what {slowest} answers with one caller ({capacity[slowest]:.0f}/s)"
            note = {"rate": rate, "limited_by": slowest, "reason": reason, "one_caller_rate": capacity}
        else:
            note = {"rate": rate, "limited_by": None, "reason": "given with --rate"}
        self.say(f"common rate {rate:g}/s: {note['reason']}")
        runs = self._in_rounds(names, rate, self.plan.seconds, speeds=self.speeds)
        runs += self._rtscore_extras(names, rate, note)
        return runs, note

    def _in_rounds(
        self,
        names: list[str],
        rate: float,
        seconds: float,
        suffix: str = "",
        speeds: list[float] | None = None,
    ) -> list[dict[str, Any]]:
        """Run records of `names` (each named with `suffix`) loaded at `rate` in turn, `seconds` each over
        the plan's rounds."""
        per_round = seconds / self.plan.rounds

        def load(name: str, r: int) -> RunResult:
            return self._load(name, rate, per_round, warmup_for(r, self.plan.warmup), seed=r)

        # Rotating the order spreads machine drift (heat, page cache, neighbours) over every target.
        measured = alternate(names, self.plan.rounds, load, speeds=speeds)
        return [
            report.run_record(f"{n}{suffix}", m.result, batch=self.batch, rounds_ms=m.by_round)
            for n, m in measured.items()
        ]

    def _rtscore_extras(self, names: list[str], common: float, note: dict[str, Any]) -> list[dict[str, Any]]:
        ours = [n for n in names if n.startswith("rtscore")]
        if not ours:
            return []
        name = ours[-1]  # the most workers: rtscore as it would be deployed on this machine
        runs = []
        # The references run at every extra rate too: each rtscore figure has its floor and MLeap beside it.
        beside = [n for n in ("floor", "mleap-served") if n in names]
        for rate in self.plan.extra_rates:
            # in rounds like the common rate's, so rtscore over its references is read from the same minutes
            runs += self._in_rounds([*beside, name], rate, self.plan.sweep_seconds, f"@{rate:g}")
        # Start the sweep near what this rtscore answers with one caller, so its steps reach the knee
        # even when the common rate (set by the slowest target) is far below it.
        one_caller = note.get("one_caller_rate", {}).get(name, 0.0)
        rate = round(max(common, one_caller / 4) * 1.5, 1)
        under: float | None = None
        over: tuple[float, dict[str, Any], str] | None = None
        for _ in range(self.plan.sweep_steps):
            result = self._load(name, rate, self.plan.sweep_seconds, self.plan.warmup, seed=0)
            summary = result.recorder.summary()
            failed = sum(result.recorder.errors.values()) > _ERROR_BUDGET * max(result.sent, 1)
            why = _over_limit(summary.p99 if summary else None, failed, result.short)
            if why:
                over = (
                    rate,
                    report.run_record(f"{name}-p99-over-10ms@{rate:g}", result, batch=self.batch),
                    why,
                )
                if under is not None or rate <= common:
                    break
                rate = round(max(common, rate / 2), 1)  # over at the first step: walk down to a passing rate
            else:
                under = rate
                if over is not None:
                    break
                rate = round(rate * 1.5, 1)
        if over is not None:
            runs.append(over[1])
        if over is not None or under is not None:
            note["rtscore_p99_10ms"] = {
                "target": name,
                "last_rate_under": under,
                "first_rate_over": over[0] if over else None,
                "stopped_because": over[2] if over else "the sweep's steps ran out",
            }
        return runs

    def mleap(self) -> list[dict[str, Any]]:
        """MLeap's JVM runtime transforming the same rows in-process, back to back (no network)."""
        from scorer.reference import ReferenceHarness

        iterations = self.plan.mleap_iterations
        self.say(f"timing MLeap's in-process transform: {iterations} calls")
        try:
            bench = ReferenceHarness().bench(
                Path(self.fixture["bundle"]),
                self.frame,
                iterations=iterations,
                warmup=max(iterations // 5, 50),
                batch=self.batch,
            )
        except RtscoreError as err:
            self.skipped["mleap"] = str(err)
            return []
        latency = {k: bench["latency_ms"].get(k) for k in ("avg", "p50", "p90", "p95", "p99", "p999", "max")}
        latency["stddev"] = bench["latency_ms"].get("stddev")
        avg = latency["avg"] or 0.0
        return [
            {
                "name": "mleap-jvm-inprocess",
                "target": "in-process (MLeap JVM runtime, no network)",
                "mode": "closed",
                "rate": None,
                "achieved_rate": round(1000.0 / avg, 2) if avg > 0 else 0.0,
                "requests": bench.get("iterations", iterations),
                "errors": {},
                "latency_ms": latency,
                "batch": self.batch,
                "note": "transform timed back to back in one JVM: a floor without gRPC, not a served latency",
                "mleap": {k: v for k, v in bench.items() if k != "latency_ms"},
            }
        ]


def _over_limit(p99: float | None, failed: bool, short: bool) -> str | None:
    """Why a sweep step ends the search for rtscore's 10 ms p99 rate, or None to go on."""
    if short:
        return "the client could not send at this rate (client-limited, not a scorer limit)"
    if failed:
        return f"more than {_ERROR_BUDGET:.0%} of calls failed"
    if p99 is None or p99 > P99_LIMIT_MS:
        return f"p99 passed {P99_LIMIT_MS:g} ms"
    return None
