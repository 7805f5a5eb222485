"""Servers under test started as subprocesses: before (sklearn), floor, mleap-served, rtscore scorers."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from rtscore.errors import FailedPrecondition, Unavailable

# Servers started with `--port 0` announce the port they got in a line such as
# "listening on 127.0.0.1:50123" or "serving on port 50123".
_PORT_LINE = re.compile(r"(?:listening|serving|port)\D*?(?:[\w.\-\[\]:]*:)?(\d{2,5})\b", re.IGNORECASE)

# Lines of a server's output kept after it announced its port.
_TAIL_LINES = 200
# Unpickling or compiling the seed-scale forest (25M nodes) takes minutes on a busy 2-core machine.
_BIG_MODEL_STARTUP_S = 900.0


def rtscore_command(*args: str) -> list[str]:
    """How to run the `rtscore` CLI of this very installation."""
    return [sys.executable, "-m", "rtscore.cli", *args]


class ServerProcess:
    """A server subprocess that prints its port; `with` starts it and waits for the port, exit stops it."""

    def __init__(self, name: str, command: Sequence[str], startup_timeout: float = 120.0) -> None:
        self.name = name
        self.command = list(command)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.port: int | None = None
        self.output: list[str] = []
        self._drain: threading.Thread | None = None

    @property
    def target(self) -> str:
        """HOST:PORT to point the load generator at."""
        if self.port is None:
            raise FailedPrecondition(f"{self.name}: not started")
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until it names its port."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting, so several servers can boot at once."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )

    def wait_ready(self) -> None:
        """Wait until the launched server names its port; stop it and raise Unavailable if it does not."""
        assert self.process is not None
        assert self.process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        fd = self.process.stdout.fileno()
        pending = b""
        # Raw reads, split here: a buffered readline() after select() would leave lines that arrived in
        # one chunk (a JVM's log lines, then the port) in Python's buffer while select() waits on the pipe.
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while self.port is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stop()
                    raise Unavailable(f"{self.name}: no port announced within {self.startup_timeout:g} s")
                if not selector.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    self.stop()
                    tail = " | ".join(self.output[-5:]) or "no output"
                    raise Unavailable(f"{self.name}: exited during startup ({tail})")
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").rstrip()
                    self.output.append(line)
                    match = _PORT_LINE.search(line)
                    if match and self.port is None:
                        self.port = int(match.group(1))
        # Keep reading so a chatty server never blocks on a full pipe, and keep its last lines (what a
        # server says when it stops).
        self._drain = threading.Thread(target=self._keep_tail, args=(self.process.stdout,), daemon=True)
        self._drain.start()

    def _keep_tail(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line.rstrip())
            if len(self.output) > 2 * _TAIL_LINES:
                del self.output[:-_TAIL_LINES]

    def stop(self) -> None:
        """Ask the server to stop (SIGTERM), then kill it if it does not."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        if self.process.stdout is not None:
            self.process.stdout.close()


def sklearn_server(model: Path, threads: int = 4) -> ServerProcess:
    """The *before* target: the pickle behind a minimal Python gRPC server."""
    # `python -m benchmarks.sklearn_server` skips the CLI's imports of every other service.
    command = [sys.executable, "-m", "benchmarks.sklearn_server", str(model), "--port", "0"]
    return ServerProcess("before", [*command, "--threads", str(threads)], _BIG_MODEL_STARTUP_S)


def connections_for(workers: int) -> int:
    """Client connections to open to a server of `workers` processes on one SO_REUSEPORT port.

    The kernel hands each new connection to a worker by a hash of its addresses, and every call on a
    connection goes to that worker; four connections per worker leave one idle in under 1% of cases
    (two workers), where one connection per worker would do so half the time. The native client then
    moves calls off the connections of a busier worker (benchmarks/README.md).
    """
    return 1 if workers <= 1 else 4 * workers


def rtscore_scorer(bundle: Path, model: str, workers: int, extra: Sequence[str] = ()) -> ServerProcess:
    """An rtscore scorer hosting `bundle` as `model` with `workers` processes on a free port."""
    command = rtscore_command(
        "scorer", "serve", "--port", "0", "--workers", str(workers), "--model", f"{model}={bundle}"
    )
    # Logs at WARNING keep per-call log lines out of the latency being measured.
    return ServerProcess(
        f"rtscore-{workers}", [*command, "--log-level", "WARNING", *extra], _BIG_MODEL_STARTUP_S
    )


def floor_server(
    bundle: Path, frame: Path, model: str, workers: int = 1, kernel: bool = False
) -> ServerProcess:
    """The `floor` target: a bare grpc.aio server sending the scorer's reply to `frame`'s first row, in
    `workers` processes on one port (named `floor-N` when more than one); with `kernel`, the
    `kernel-floor` target, which first scores each request's dense rows with the bundle's kernel."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.floor_server",
        "--bundle",
        str(bundle),
        "--frame",
        str(frame),
    ]
    command += ["--model", model, "--port", "0", "--workers", str(workers)]
    name = "kernel-floor" if kernel else "floor"
    if kernel:
        command.append("--kernel")
    return ServerProcess(name if workers == 1 else f"{name}-{workers}", command, _BIG_MODEL_STARTUP_S)


def relay_floor(scorer: str, redis_url: str, request: Path) -> ServerProcess:
    """The `e2e-floor` target: per Evaluate, a Redis PING and one Score call (`request`, as bytes) to
    `scorer`, then a fixed Decision: the extractor's hops without its work."""
    command = [sys.executable, "-m", "benchmarks.relay_floor", "--scorer", scorer, "--redis-url", redis_url]
    return ServerProcess("e2e-floor", [*command, "--request", str(request), "--port", "0"])


def native_relay(scorer: str, redis_url: str, request: Path, decision: Path, binary: Path) -> ServerProcess:
    """The `e2e-floor-native` target: `e2e-floor`'s hops (a Redis PING, one Score call of `request` to
    `scorer`, then the fixed `decision`) made by a native server (`benchmarks/goloadgen/relay`)."""
    command = [str(binary), "--scorer", scorer, "--redis-url", redis_url, "--request", str(request)]
    return ServerProcess("e2e-floor-native", [*command, "--response", str(decision), "--port", "0"])


def mleap_served(bundle: Path, model: str) -> ServerProcess:
    """The `mleap-served` target: MLeap's JVM runtime behind grpc-java (`jvm/served`), built if needed."""
    from scorer.reference.layout import HarnessLayout

    layout = HarnessLayout.served()
    layout.ensure_runnable()  # Unavailable (why, and how to fix it) without Java or a built jar
    command = layout.command(str(bundle), "--name", model, "--host", "127.0.0.1", "--port", "0")
    # A JVM start and MLeap's load of the seed forest take minutes on a busy 2-core machine.
    return ServerProcess("mleap-served", command, _BIG_MODEL_STARTUP_S)
