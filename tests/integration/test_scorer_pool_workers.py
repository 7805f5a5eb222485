"""A scorer of two worker processes on one SO_REUSEPORT port: a pool reaches both over several
connections (one connection reaches only the worker it drew), and the workers end with their
supervisor, even when it is SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from scorer.client import PoolSettings, ScorerPool, static_endpoints
from tests.integration.test_scorer_pool import DEMO, demo_frame
from tests.paths import ROOT


@pytest.fixture
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, psutil.Process]]:
    """`rtscore scorer serve --workers 2` on port 0: its address and its supervisor process."""
    env = {**os.environ, "RTSCORE_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    command = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", "--port", "0", "--workers", "2",
               "--model", f"demo={DEMO}", "--scoring-threads", "1", "--log-level", "WARNING"]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "serving on" in banner, banner
        yield banner.split("serving on ")[1].split()[0], psutil.Process(proc.pid)
    finally:
        proc.kill()  # the workers drain and end with their supervisor
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _cpu_by_child(supervisor: psutil.Process) -> dict[int, float]:
    return {c.pid: sum(c.cpu_times()[:2]) for c in supervisor.children(recursive=True)}


async def test_calls_reach_both_workers_over_several_connections(
    two_workers: tuple[str, psutil.Process],
) -> None:
    target, supervisor = two_workers
    frame = demo_frame()
    # 16 connections: all on one worker in 2 of 65,536 runs, 15 of 16 in 32
    settings = PoolSettings(default_timeout_s=5.0, connections_per_endpoint=16)
    async with ScorerPool(static_endpoints(target), settings) as pool:
        await pool.wait_ready("demo", timeout=30)
        assert pool.endpoints() == [target]
        before = _cpu_by_child(supervisor)
        for _ in range(250):
            replies = await asyncio.gather(*(pool.score("demo", frame) for _ in range(4)))
            assert {r.endpoint for r in replies} == {target}
        after = _cpu_by_child(supervisor)
    used = sorted((after[pid] - before.get(pid, 0.0) for pid in after), reverse=True)[:2]
    assert len(used) == 2
    # one connection would leave one worker idle (its canary's CPU only)
    assert used[1] >= 0.1 * sum(used), f"worker CPU over 1,000 calls: {used}"


def test_the_workers_end_when_their_supervisor_is_sigkilled(two_workers: tuple[str, psutil.Process]) -> None:
    _, supervisor = two_workers
    workers = supervisor.children()
    assert len(workers) == 2
    supervisor.kill()
    _, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive, f"workers left serving without a supervisor: {[w.pid for w in alive]}"
