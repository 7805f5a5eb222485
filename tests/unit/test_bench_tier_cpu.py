"""`bench e2e`'s CPU per call by tier, over real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.server_cpu import cpu_per_call, tier_cpu

# Burns `burn` s of CPU once `start` exists, writes `done`, then lives until `stop` exists.
_WORKER = """
import pathlib, sys, time
start, done, stop, burn = sys.argv[1:5]
while not pathlib.Path(start).exists(): time.sleep(0.01)
end = time.process_time() + float(burn)
while time.process_time() < end: pass
pathlib.Path(done).touch()
while not pathlib.Path(stop).exists(): time.sleep(0.01)
"""
# Runs one worker, and once that one exits a second (a supervisor replacing a worker).
_SUPERVISOR = """
import subprocess, sys
first, second = sys.argv[1:6], sys.argv[6:11]
subprocess.run([sys.executable, '-c', first[0], *first[1:]])
subprocess.run([sys.executable, '-c', second[0], *second[1:]])
"""


def _worker(tmp: Path, name: str, burn: float, start: str = "start", stop: str = "stop") -> list[str]:
    return [_WORKER, str(tmp / start), str(tmp / f"{name}.done"), str(tmp / stop), str(burn)]


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never came"
        time.sleep(0.01)


def test_a_tier_counts_its_whole_process_tree_from_its_first_read(tmp_path: Path) -> None:
    (tmp_path / "ready").touch()
    # a parent and its child both burn 0.25 s once told to, and an idle process beside them
    child = [sys.executable, "-c", *_worker(tmp_path, "child", 0.25)]
    parent_code = f"import subprocess; subprocess.Popen({child!r})\n" + _WORKER
    parent = subprocess.Popen([sys.executable, "-c", parent_code, *_worker(tmp_path, "parent", 0.25)[1:]])
    idle = subprocess.Popen([sys.executable, "-c", *_worker(tmp_path, "idle", 0.0, start="never")])
    try:
        time.sleep(1.0)  # both interpreters started and waiting, so their start-up is before the read
        tiers = {"busy": [parent.pid], "idle": [idle.pid]}
        before = tier_cpu(tiers)
        (tmp_path / "start").touch()
        _wait_for(tmp_path / "parent.done")
        _wait_for(tmp_path / "child.done")
        per_call = cpu_per_call(before, tier_cpu(tiers), calls=10)
    finally:
        (tmp_path / "stop").touch()
        idle.kill()  # it never starts
        for process in (parent, idle):
            process.wait(timeout=30)
    # 0.5 s over 10 calls, the child's half included; the idle one polls a file and little else
    assert 45 < per_call["busy"] < 65, per_call
    assert per_call["idle"] < 3, per_call
    assert per_call["total"] == pytest.approx(per_call["busy"] + per_call["idle"], abs=2e-3)


def test_a_worker_replaced_between_reads_takes_its_predecessors_time_away_from_no_one(
    tmp_path: Path,
) -> None:
    # the first worker burns 0.4 s before the first read, then exits; its successor burns 0.1 s
    first = _worker(tmp_path, "first", 0.4, start="go", stop="retire")
    second = _worker(tmp_path, "second", 0.1, start="go", stop="stop")
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, *first, *second])
    try:
        (tmp_path / "go").touch()
        _wait_for(tmp_path / "first.done")
        before = tier_cpu({"workers": [supervisor.pid]})
        (tmp_path / "retire").touch()
        _wait_for(tmp_path / "second.done")
        per_call = cpu_per_call(before, tier_cpu({"workers": [supervisor.pid]}), calls=1)
    finally:
        (tmp_path / "retire").touch()
        (tmp_path / "stop").touch()
        supervisor.wait(timeout=30)
    # the successor's 0.1 s (and its start-up); the tree's totals alone would say 0.1 - 0.4 s
    assert 95 < per_call["workers"] < 250, per_call
