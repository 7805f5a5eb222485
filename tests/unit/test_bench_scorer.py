"""`rtscore bench scorer`'s own arithmetic: CPU per call by thread role, memory of a process tree."""

from __future__ import annotations

import os
import threading

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
    done = threading.Event()
    worker = threading.Thread(target=done.wait)
    worker.start()
    try:
        threads = thread_cpu(os.getpid())
        memory = tree_memory(os.getpid())
    finally:
        done.set()
        worker.join()

    assert (os.getpid(), os.getpid()) in threads
    assert threads[(os.getpid(), os.getpid())][0] == "event_loop"
    assert (os.getpid(), worker.native_id) in threads
    assert memory["processes"] >= 1
    assert 0 < memory["workers_uss_mb"] <= memory["workers_pss_mb"] <= memory["workers_rss_mb"]


def test_the_ladder_climbs_in_quarters_to_the_top_rate() -> None:
    assert _ladder(2000) == (500, 1000, 1500, 2000)
