"""Server CPU per call, read from outside the servers: by thread role within one server's process tree
(`bench scorer`, `bench overload`), or by tier across the processes a call went through (`bench e2e`).

Both readings are maps of CPU seconds keyed by (pid, tid) with a role; `cpu_per_call` turns two of them
into milliseconds per call by role. A key that appears between the reads (a worker replaced) counts
from zero, and one that vanished takes nothing away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

# CPU seconds of each server thread (or process, tid 0), keyed by (pid, tid), with its role.
ThreadCpu = dict[tuple[int, int], tuple[str, float]]


def _role(pid: int, tid: int, name: str) -> str:
    if tid == pid:
        return "event_loop"
    if name.startswith("rtscore-score"):
        return "scoring"
    if name.startswith(("event_engine", "grpc", "lifeguard", "default-execut", "resolver")):
        return "grpc"
    return "other"


def thread_cpu(pid: int) -> ThreadCpu:
    """CPU seconds of every thread of `pid` and its descendants, keyed by (pid, tid), with its role."""
    root = psutil.Process(pid)
    children = root.children(recursive=True)
    seen: ThreadCpu = {}
    for process in [root, *children]:
        try:
            threads = process.threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for thread in threads:
            try:
                name = Path(f"/proc/{process.pid}/task/{thread.id}/comm").read_text().strip()
            except OSError:
                name = ""
            # with --workers N the root process only supervises the workers
            role = "supervisor" if process is root and children else _role(process.pid, thread.id, name)
            seen[(process.pid, thread.id)] = (role, thread.user_time + thread.system_time)
    return seen


def cpu_per_call(before: ThreadCpu, after: ThreadCpu, calls: int) -> dict[str, float]:
    """Milliseconds of server CPU per call by thread role, and in total."""
    return to_per_call(spent_by_role(before, after), calls)


def spent_by_role(before: ThreadCpu, after: ThreadCpu) -> dict[str, float]:
    """CPU seconds spent from `before` to `after`, by thread role."""
    by_role: dict[str, float] = {}
    for key, (role, seconds) in after.items():
        spent = seconds - before.get(key, (role, 0.0))[1]
        by_role[role] = by_role.get(role, 0.0) + spent
    return by_role


def to_per_call(by_role: Mapping[str, float], calls: int) -> dict[str, float]:
    """CPU seconds by role as milliseconds per call, by role and in total."""
    per_call = {role: round(1e3 * s / max(calls, 1), 3) for role, s in sorted(by_role.items())}
    per_call["total"] = round(sum(1e3 * s for s in by_role.values()) / max(calls, 1), 3)
    return per_call


def tier_cpu(tiers: Mapping[str, Sequence[int]], redis_url: str | None = None) -> ThreadCpu:
    """CPU seconds of every process of each tier's trees, keyed by (pid, 0) with the tier as role; with
    `redis_url`, Redis's own `INFO cpu` as tier `redis` (its server's count: a Redis elsewhere too)."""
    seen: ThreadCpu = {}
    for tier, pids in tiers.items():
        for pid in pids:
            try:
                root = psutil.Process(pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in processes:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                seen[(process.pid, 0)] = (tier, times.user + times.system)
    if redis_url:
        import redis

        with redis.Redis.from_url(redis_url) as client:
            info = client.info("cpu")
        seen[(0, 0)] = ("redis", float(info["used_cpu_user"]) + float(info["used_cpu_sys"]))
    return seen
