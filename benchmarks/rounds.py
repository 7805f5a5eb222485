"""Targets measured in alternation: the same load on each in turn, in rounds whose order rotates, so
that a shared machine's drift over minutes (neighbours, heat, the page cache) falls on every target
alike and a ratio between two of them is not a ratio between two moments.

Each target's rounds are merged into one run (`combine`); its server CPU per call is summed over the
rounds, and each round's p50 and p99 are kept, so that a ratio can also be read round by round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from benchmarks import clients
from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import RunResult
from benchmarks.server_cpu import spent_by_role, thread_cpu, to_per_call
from benchmarks.targets import ServerProcess


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
    servers: Sequence[ServerProcess],
    rounds: int,
    load: Callable[[ServerProcess, int], RunResult],
    first: int = 0,
) -> dict[str, Alternated]:
    """`load(server, round)` on every server in `rounds` rounds, the order rotated by one each round
    (starting `first` places on), by server name."""
    out: dict[str, Alternated] = {}
    count = len(servers)
    for r in range(rounds):
        shift = (first + r) % count if count else 0
        for server in [*servers[shift:], *servers[:shift]]:
            assert server.process is not None, f"{server.name} was not started"
            pid = server.process.pid
            before = thread_cpu(pid)
            result = load(server, r)
            spent = spent_by_role(before, thread_cpu(pid))
            summary = result.recorder.summary()
            seen = out.get(server.name)
            if seen is None:
                seen = out[server.name] = Alternated(result)
            else:
                seen.result = combine(seen.result, result)
            for role, seconds in spent.items():
                seen.cpu_seconds[role] = seen.cpu_seconds.get(role, 0.0) + seconds
            seen.calls += result.calls_seen
            seen.by_round.append(
                {"p50": round(summary.p50, 3), "p99": round(summary.p99, 3)}
                if summary
                else {"p50": None, "p99": None}
            )
    return out


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
