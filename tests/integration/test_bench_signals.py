"""A benchmark stopped by SIGTERM stops what it started: no server or load client outlives it."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.integration.redis_fixtures import redis_url
from tests.paths import ROOT

pytestmark = [pytest.mark.slow]
__all__ = ["redis_url"]


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("command", "server"), [("scorer", "floor_server"), ("e2e", "extractor serve")])
def test_sigterm_mid_run_ends_every_process_the_benchmark_started(
    command: str, server: str, redis_url: str
) -> None:
    args = ["bench", command, "--quick", *(["--redis-url", redis_url] if command == "e2e" else [])]
    bench = subprocess.Popen(
        [sys.executable, "-m", "rtscore.cli", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    started: dict[int, tuple[psutil.Process, str]] = {}  # each child and its command line
    try:
        deadline = time.monotonic() + 150

        # until a load client has run and the server named is up: the run is under way, with both kinds
        # of child (`bench scorer` starts the scorer, warms it up, then the floors)
        def under_way() -> bool:
            lines = [line for _, line in started.values()]
            return any("loadgen" in line for line in lines) and any(server in line for line in lines)

        while not under_way():
            assert bench.poll() is None, bench.communicate()[0][-2000:]
            assert time.monotonic() < deadline, f"no load client and {server} started"
            for child in psutil.Process(bench.pid).children(recursive=True):
                try:
                    started.setdefault(child.pid, (child, " ".join(child.cmdline())))
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)
        bench.send_signal(signal.SIGTERM)
        out, _ = bench.communicate(timeout=30)
        assert bench.returncode == 128 + signal.SIGTERM, out[-2000:]
        _gone, alive = psutil.wait_procs([child for child, _ in started.values()], timeout=15)
        assert alive == [], [" ".join(p.cmdline()) for p in alive]
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
        for child, _ in started.values():  # a failed check killed the bench: end what it had started
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
