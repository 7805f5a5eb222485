"""Targets measured in alternation: the same load on each in turn, in rounds whose order rotates, so
that a shared machine's drift over minutes (neighbours, heat, the page cache) falls on every target
alike and a ratio between two of them is not a ratio between two moments.

Each target's rounds are merged into one run (`combine`); its server CPU per call is summed over the
rounds, and each round's p50 and p99 are kept, so that a ratio can also be read round by round.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks import clients
from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import RunResult
from benchmarks.report import python_loop_ms
from benchmarks.server_cpu import ThreadCpu, spent_by_role, to_per_call
from rtscore.errors import InvalidArgument


@dataclass
class Alternated:
    """One target's rounds: merged into one run, with its CPU and each round's p50 and p99."""

    result: RunResult
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # by thread role, over the rounds
    calls: int = 0  # calls the server saw in them, warm-ups included
    by_round: list[dict[str, float | None]] = field(default_factory=list)

    @property
    def cpu_ms_per_call(self) -> dict[str, float]:
        """Server CPU per call by thread role, and in total, over every round."""
        return to_per_call(self.cpu_seconds, self.calls)


def alternate(
    names: Sequence[str],
    rounds: int,
    load: Callable[[str, int], RunResult],
    cpu: Callable[[str], ThreadCpu] | None = None,
    first: int = 0,
    speeds: list[float] | None = None,
) -> dict[str, Alternated]:
    """`load(name, round)` on every target in `rounds` rounds, the order rotated by one each round
    (starting `first` places on), with `cpu(name)` (the CPU of the target's processes), where given,
    read around each; by target name. With `speeds`, the machine's speed (`report.python_loop_ms`) is
    appended to it at the start of each round, so a report shows whether the host changed in the run."""
    out: dict[str, Alternated] = {}
    count = len(names)
    for r in range(rounds):
        if speeds is not None:
            speeds.append(python_loop_ms())
        shift = (first + r) % count if count else 0
        for name in [*names[shift:], *names[:shift]]:
            before = cpu(name) if cpu is not None else {}
            result = load(name, r)
            spent = spent_by_role(before, cpu(name)) if cpu is not None else {}
            summary = result.recorder.summary()
            seen = out.get(name)
            if seen is None:
                seen = out[name] = Alternated(result)
            else:
                seen.result = combine(seen.result, result)
            for role, seconds in spent.items():
                seen.cpu_seconds[role] = seen.cpu_seconds.get(role, 0.0) + seconds
            seen.calls += result.calls_seen
            seen.by_round.append({
                "p50": round(summary.p50, 3) if summary else None,
                "p99": round(summary.p99, 3) if summary else None,
            })  # fmt: skip
    return out


# A round after the first warms its target up this long at most: the target has just been serving.
LATER_ROUND_WARMUP_S = 0.5


def warmup_for(round_: int, first: float) -> float:
    """Seconds of warm-up before round `round_`: `first` before the first, at most 0.5 s after."""
    return first if round_ == 0 else min(first, LATER_ROUND_WARMUP_S)


def rounds_for(given: int | None, default: int, seconds: float) -> int:
    """How many rounds `seconds` are split into: `given`, or `default` but never under a second a round;
    InvalidArgument where that does not leave a second a round."""
    rounds = given if given is not None else min(default, max(1, int(seconds)))
    if rounds < 1 or seconds / rounds < 1.0:
        raise InvalidArgument(f"--rounds must be at least 1 and leave a second a round, got {rounds}")
    return rounds


def ratios_by_round(
    ours: Sequence[dict[str, Any]], theirs: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """Round-by-round p50 and p99 ratios of two runs measured in alternation, with their medians;
    None unless both had the same rounds, more than one."""
    if len(ours) < 2 or len(ours) != len(theirs):
        return None
    out: dict[str, Any] = {}
    for statistic in ("p50", "p99"):
        ratios = [round(a[statistic] / b[statistic], 3) for a, b in zip(ours, theirs, strict=True)
                  if a[statistic] and b[statistic]]  # fmt: skip
        out[statistic] = ratios
        out[f"{statistic}_median"] = round(statistics.median(ratios), 3) if ratios else None
    return out


def said_by_round(by_round: dict[str, Any] | None) -> str:
    """`1.31x (1.20-1.52) / 1.44x (1.30-1.90)`: the round-by-round medians and ranges, or `-`."""
    if not by_round or not by_round["p50"] or not by_round["p99"]:
        return "-"
    return " / ".join(
        f"{by_round[f'{s}_median']:.2f}x ({min(by_round[s]):.2f}-{max(by_round[s]):.2f})"
        for s in ("p50", "p99")
    )


def combine(first: RunResult, more: RunResult) -> RunResult:
    """Two rounds of one target as one run; the timeline continues where the first one ended."""
    recorder = LatencyRecorder()
    recorder.merge(first.recorder)
    recorder.merge(more.recorder, offset_s=first.window_s)
    lag = {k: max(first.send_lag_ms[k], more.send_lag_ms[k]) for k in first.send_lag_ms}
    window = first.window_s + more.window_s
    spec = replace(first.spec, duration=(first.spec.duration or 0) + (more.spec.duration or 0))
    return RunResult(
        spec,
        recorder,
        first.sent + more.sent,
        window,
        lag,
        first.processes,
        late_sends=first.late_sends + more.late_sends,
        client_cpu=clients.total_cpu([first, more]),
        client=first.client,
    )
