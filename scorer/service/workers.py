"""`--workers N`: N scorer processes on one port (SO_REUSEPORT), supervised by this process.

Following a registry, every worker follows it and heartbeats the one endpoint they share, so the host
appears once in the membership (the endpoint is what a client can reach; which worker answers is the
kernel's choice). Their downloads meet in the shared bundle cache, which fetches each bundle once.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from rtscore.errors import Unavailable
from scorer.service.settings import ScorerSettings

log = logging.getLogger(__name__)


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) a SO_REUSEPORT socket so a chosen free port stays ours for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def worker_env(settings: ScorerSettings, port: int, index: int) -> dict[str, str]:
    """The environment of worker `index`: the parent's settings as RTSCORE_SCORER_* variables."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"RTSCORE_SCORER_{name.upper()}"] = text
    env["RTSCORE_SCORER_WORKERS"] = "1"
    env["RTSCORE_SCORER_PORT"] = str(port)
    if settings.metrics_port is not None:
        env["RTSCORE_SCORER_METRICS_PORT"] = str(
            settings.metrics_port + index if settings.metrics_port else 0
        )
    return env


def _start(settings: ScorerSettings, port: int, index: int, args: Sequence[str]) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", *args]
    env = worker_env(settings, port, index)
    die_with = _die_with(os.getpid()) if sys.platform == "linux" else None
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=die_with)


_PR_SET_PDEATHSIG = 1


def _die_with(supervisor: int) -> Callable[[], None]:
    """What a worker runs between fork and exec so that it drains (SIGTERM) when the supervisor dies,
    even by SIGKILL or the OOM killer, instead of holding the port as an orphan nobody supervises."""
    libc = ctypes.CDLL(None, use_errno=True)

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != supervisor:  # it died before the signal was armed
            os._exit(1)

    return arm


def _await_ready(proc: subprocess.Popen[str], index: int) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if "serving on" not in line:
        raise Unavailable(f"worker {index} did not start (exit code {proc.wait()})")
    return line


def run_workers(settings: ScorerSettings, models: Sequence[str], canaries: Sequence[str]) -> int:
    """Start the workers, report the shared port, and on SIGTERM drain them all; returns the exit code."""
    reservation = reserve_port(settings.host, settings.port)
    port = int(reservation.getsockname()[1])
    args = [a for m in models for a in ("--model", m)] + [a for c in canaries for a in ("--canary", c)]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    procs: list[subprocess.Popen[str]] = []
    try:
        # The first worker alone fills the compiled-forest cache; the others then map it, not rebuild it.
        procs.append(_start(settings, port, 0, args))
        _await_ready(procs[0], 0)
        procs.extend(_start(settings, port, i, args) for i in range(1, settings.workers))
        for i, proc in enumerate(procs[1:], start=1):
            _await_ready(proc, i)
        pids = ",".join(str(p.pid) for p in procs)
        print(f"rtscore scorer: serving on {settings.host}:{port} ({len(procs)} workers: {pids})", flush=True)
        while not stop.wait(0.2):
            if any(p.poll() is not None for p in procs):
                log.error("a worker exited; stopping the others", extra={"codes": [p.poll() for p in procs]})
                break
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait() for proc in procs]
        reservation.close()
    print(f"rtscore scorer: workers exited with {codes}", file=sys.stderr, flush=True)
    return 0 if stop.is_set() and not any(codes) else 1
