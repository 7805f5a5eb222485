"""`--workers N`: N processes of a service (`rtscore scorer serve`, `rtscore extractor serve`) on one
port (SO_REUSEPORT), supervised by this process, which replaces a worker that exits (a crash, the OOM
killer) while the others keep serving the port.

A worker is the same `serve` command with the supervisor's settings in its environment (the service's
own prefix, `--workers 1`, the shared port); which worker answers a new connection is the kernel's
choice. Scorer workers following a registry heartbeat the one endpoint they share, so the host appears
once in the membership, and their downloads meet in the shared bundle cache; extractor workers share
their velocity state in Redis.
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
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, ClassVar, Protocol

from rtscore.errors import Unavailable

log = logging.getLogger(__name__)
# A worker that exits after serving this long is replaced at once; one that dies younger (or never
# starts) is replaced after a delay doubling from _RESTART_MIN_S to _RESTART_MAX_S, so a worker that
# cannot live costs the host one start every half minute, not a start loop.
_STABLE_S = 10.0
_RESTART_MIN_S = 0.5
_RESTART_MAX_S = 30.0
SUPERVISOR_ENV = "RTSCORE_WORKER_OF"  # a worker's environment names its supervisor's pid


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) a SO_REUSEPORT socket so a chosen free port stays ours for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class ServiceSettings(Protocol):
    """What the supervisor reads of a service's settings (`ScorerSettings`, `ExtractorSettings`)."""

    model_config: ClassVar[Any]
    host: str
    port: int
    workers: int
    metrics_port: int | None

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def worker_env(settings: ServiceSettings, port: int, index: int) -> dict[str, str]:
    """The environment of worker `index`: the parent's settings as variables of the settings' own
    prefix (RTSCORE_SCORER_*, RTSCORE_EXTRACTOR_*), one worker on `port`, metrics on port + index."""
    prefix = str(settings.model_config["env_prefix"])
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"{prefix}{name.upper()}"] = text
    env[f"{prefix}WORKERS"] = "1"
    env[f"{prefix}PORT"] = str(port)
    if settings.metrics_port is not None:
        env[f"{prefix}METRICS_PORT"] = str(settings.metrics_port + index if settings.metrics_port else 0)
    return env


_PR_SET_PDEATHSIG = 1


def end_with_supervisor() -> None:
    """In a worker: drain (SIGTERM) when the supervisor named by `SUPERVISOR_ENV` dies, even by SIGKILL
    or the OOM killer, instead of holding the port as an orphan nobody supervises. Armed by the worker
    itself, so the supervisor runs no Python between fork and exec (it has threads)."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor or sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before the signal was armed
        raise Unavailable(f"the supervisor (pid {supervisor}) is gone")


class _Worker:
    """One worker process; a thread reads its output, so that a chatty worker never blocks on a full
    pipe and the supervisor can wait for its banner without blocking."""

    def __init__(self, index: int, proc: subprocess.Popen[str]) -> None:
        self.index = index
        self.proc = proc
        self.ready = threading.Event()
        self.ready_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"rtscore-worker-{index}")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not self.ready.is_set() and "serving on" in line:
                self.ready_at = time.monotonic()
                self.ready.set()

    def wait_ready(self, stop: threading.Event) -> None:
        """Return once the worker serves; Unavailable if it exits first (or the supervisor is stopped)."""
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or stop.is_set():
                raise Unavailable(f"worker {self.index} did not start (exit code {self.proc.poll()})")


def _restart_delay(worker: _Worker, previous_s: float) -> float:
    """How long to wait before replacing `worker`: at once after a worker that served for a while, then
    doubling up to `_RESTART_MAX_S` while replacements keep failing or dying young."""
    if worker.ready_at is not None and time.monotonic() - worker.ready_at >= _STABLE_S:
        return 0.0
    return min(max(2 * previous_s, _RESTART_MIN_S), _RESTART_MAX_S)


def run_workers(service: str, settings: ServiceSettings, args: Sequence[str] = ()) -> int:
    """Run `settings.workers` processes of `rtscore SERVICE serve [args]` (settings from the
    environment, see `worker_env`): start them, report the shared port, replace any that exits, and on
    SIGTERM drain them all; returns the exit code."""
    host = settings.host
    reservation = reserve_port(host, settings.port)
    port = int(reservation.getsockname()[1])
    command = [sys.executable, "-m", "rtscore.cli", service, "serve", *args]
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def start(index: int) -> _Worker:
        env = {**worker_env(settings, port, index), SUPERVISOR_ENV: str(os.getpid())}
        return _Worker(index, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))

    workers: list[_Worker] = []
    try:
        # The first worker alone fills the compiled-forest cache; the others then map it, not rebuild it.
        workers.append(start(0))
        workers[0].wait_ready(stop)
        workers.extend(start(i) for i in range(1, settings.workers))
        for worker in workers[1:]:
            worker.wait_ready(stop)
        pids = ",".join(str(w.proc.pid) for w in workers)
        print(f"rtscore {service}: serving on {host}:{port} ({len(workers)} workers: {pids})", flush=True)
        _supervise(service, workers, start, stop)
    finally:
        for worker in workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        codes = [worker.proc.wait() for worker in workers]
        reservation.close()
    print(f"rtscore {service}: workers exited with {codes}", file=sys.stderr, flush=True)
    return 0 if stop.is_set() and not any(codes) else 1


def _supervise(
    service: str, workers: list[_Worker], start: Callable[[int], _Worker], stop: threading.Event
) -> None:
    """Replace every worker that exits (the others keep serving the port meanwhile), until `stop`; return
    early when no worker serves and every one's latest start failed: nothing here can mend that."""
    delays = [0.0] * len(workers)
    due: dict[int, float] = {}  # index -> when its replacement starts
    starting: set[int] = set()  # replacements not yet serving
    while not stop.wait(0.2):
        now = time.monotonic()
        for i, worker in enumerate(workers):
            if worker.proc.poll() is None:
                if i in starting and worker.ready.is_set():
                    starting.discard(i)
                    log.warning("a replacement worker serves", extra={"worker": i, "pid": worker.proc.pid})
                continue
            if i not in due:
                starting.discard(i)
                delays[i] = _restart_delay(worker, delays[i])
                due[i] = now + delays[i]
                log.error("a worker exited; replacing it", extra={"worker": i, "pid": worker.proc.pid,
                          "code": worker.proc.returncode, "in_s": delays[i]})  # fmt: skip
            elif now >= due[i]:
                del due[i]
                workers[i] = start(i)
                starting.add(i)
        if all(w.proc.poll() is not None and not w.ready.is_set() for w in workers):
            codes = [w.proc.poll() for w in workers]
            log.error(f"no worker starts; the {service} stops", extra={"codes": codes})
            return
