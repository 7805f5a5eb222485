"""A scorer of two worker processes on one SO_REUSEPORT port: a pool reaches both over several
connections (one connection reaches only the worker it drew), a worker that dies is replaced while the
other serves, and the workers end with their supervisor, even when it is SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from scorer.client import PoolSettings, ScorerPool, static_endpoints
from tests.integration.test_scorer_pool import DEMO, demo_frame
from tests.paths import ROOT


def _serve_two_workers(bundle: Path, cache: Path, stderr: int) -> subprocess.Popen[str]:
    env = {**os.environ, "RTSCORE_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", "--port", "0", "--workers", "2",
               "--model", f"demo={bundle}", "--scoring-threads", "1", "--log-level", "WARNING"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


@pytest.fixture
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, psutil.Process]]:
    """`rtscore scorer serve --workers 2` on port 0: its address and its supervisor process."""
    proc = _serve_two_workers(DEMO, tmp_path_factory.mktemp("cache"), subprocess.DEVNULL)
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


def _live_workers(supervisor: psutil.Process) -> set[int]:
    """The supervisor's worker pids, less the dead ones it has not reaped yet."""
    live = set()
    for child in supervisor.children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                live.add(child.pid)
    return live


def _listens(pid: int, port: int) -> bool:
    connections = psutil.Process(pid).net_connections("tcp")
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def _listens(pid: int, port: int) -> bool:
    connections = psutil.Process(pid).net_connections("tcp")
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


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


async def test_a_worker_that_dies_is_replaced_while_the_other_serves(
    two_workers: tuple[str, psutil.Process],
) -> None:
    target, supervisor = two_workers
    frame = demo_frame()
    first = _live_workers(supervisor)
    settings = PoolSettings(default_timeout_s=5.0, connections_per_endpoint=8)
    async with ScorerPool(static_endpoints(target), settings) as pool:
        await pool.wait_ready("demo", timeout=30)
        for _ in range(20):
            await asyncio.gather(*(pool.score("demo", frame) for _ in range(4)))
        victim = psutil.Process(min(first))
        victim.kill()
        survivor, deadline = first - {victim.pid}, time.monotonic() + 60
        # calls go on through the death and the replacement's start: every one must be answered
        # (the victim may look alive for a moment after SIGKILL, until the kernel has ended it)
        while len(workers := _live_workers(supervisor) - {victim.pid}) < 2 or not survivor < workers:
            assert time.monotonic() < deadline, f"the dead worker was not replaced within 60 s: {workers}"
            await asyncio.gather(*(pool.score("demo", frame) for _ in range(4)))
        (replacement,) = workers - survivor
        port = int(target.rsplit(":", 1)[1])
        while not _listens(replacement, port):  # it serves once its model is loaded
            assert time.monotonic() < deadline, "the replacement never listened on the shared port"
            await asyncio.gather(*(pool.score("demo", frame) for _ in range(4)))
    # the replacement takes connections: fresh pools reach it
    before = _cpu_by_child(supervisor)
    async with ScorerPool(static_endpoints(target), PoolSettings(connections_per_endpoint=16)) as pool:
        await pool.wait_ready("demo", timeout=30)
        for _ in range(250):
            await asyncio.gather(*(pool.score("demo", frame) for _ in range(4)))
    after = _cpu_by_child(supervisor)
    used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    assert used[replacement] >= 0.1 * sum(used.values()), f"worker CPU over 1,000 calls: {used}"


def test_the_scorer_stops_when_no_worker_can_start_again(tmp_path: Path) -> None:
    bundle = tmp_path / "demo.zip"
    shutil.copy(DEMO, bundle)
    proc = _serve_two_workers(bundle, tmp_path / "cache", subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert "serving on" in proc.stdout.readline()
        bundle.unlink()  # a replacement now fails to load its model
        for worker in psutil.Process(proc.pid).children():
            worker.kill()
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == 1
    assert "a worker exited; replacing it" in stderr
    assert "no worker starts; the scorer stops" in stderr
