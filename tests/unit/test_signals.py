"""rtscore.signals in a process of its own: a stop signal reaches each loop run in turn, whichever loop."""

from __future__ import annotations

import subprocess
import sys

from tests.paths import ROOT

SCRIPT = """
import asyncio, os, signal, threading, time
import uvloop
from rtscore.signals import ignore_stop_signals, stop_on_signals

async def until_stopped():
    stop = asyncio.Event()
    stop_on_signals(asyncio.get_running_loop(), stop)
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    began = time.monotonic()
    await asyncio.wait_for(stop.wait(), 5)
    return time.monotonic() - began

took = [run(until_stopped()) for run in (asyncio.run, asyncio.run, uvloop.run, asyncio.run)]
ignore_stop_signals()
os.kill(os.getpid(), signal.SIGTERM)  # ignored: the process goes on to print
print(max(took))
"""


def test_each_loop_in_turn_is_stopped_by_sigterm_and_a_late_one_is_ignored() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 2.0  # woken at once (0.2 s after the timer), not at a later event
