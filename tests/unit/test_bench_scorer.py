"""`rtscore bench scorer`'s own arithmetic: CPU per call by thread role, memory of a process tree."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.scorer_bench import _ladder, _role, cpu_per_call, thread_cpu, tree_memory


def test_cpu_per_call_splits_the_servers_cpu_by_thread_role() -> None:
    before = {(1, 1): ("event_loop", 1.0), (1, 2): ("scoring", 0.5), (1, 3): ("grpc", 0.0)}
    after = {
        (1, 1): ("event_loop", 2.0),
        (1, 2): ("scoring", 1.0),
        (1, 3): ("grpc", 0.1),
        (1, 4): ("other", 0.4),
    }

    per_call = cpu_per_call(before, after, calls=1000)

    assert per_call == {"event_loop": 1.0, "grpc": 0.1, "other": 0.4, "scoring": 0.5, "total": 2.0}


def test_threads_are_told_apart_by_their_os_names() -> None:
    assert _role(10, 10, "rtscore") == "event_loop"
    assert _role(10, 11, "rtscore-score") == "scoring"
    assert _role(10, 12, "event_engine") == "grpc"
    assert _role(10, 13, "rtscore") == "other"


def test_a_running_process_reports_its_threads_and_memory() -> None:
    code = (
        "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start();"
        " print('ready', flush=True)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code + "; time.sleep(30)"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        threads = thread_cpu(child.pid)
        memory = tree_memory(child.pid)
    finally:
        child.kill()
        child.communicate()

    roles = sorted(role for (pid, _tid), (role, _cpu) in threads.items() if pid == child.pid)
    assert roles == ["event_loop", "other"]
    assert memory["processes"] == 1
    assert 0 < memory["workers_uss_mb"] <= memory["workers_pss_mb"] <= memory["workers_rss_mb"]


def test_the_ladder_climbs_in_quarters_to_the_top_rate() -> None:
    assert _ladder(2000) == (500, 1000, 1500, 2000)
