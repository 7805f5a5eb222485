"""The demo's child processes: each started from the real `rtscore` CLI, tracked by pid, stopped in reverse.

Children run in sessions of their own, so a Ctrl-C at the terminal reaches the demo alone, which then
drains them in the reverse order of their start (the extractor before the scorers it calls, the scorers
before the registry they follow); a child that does not stop within its grace is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rtscore.errors import RtscoreError

# Every child is `python -m rtscore.cli ...`: the same entry point as the `rtscore` console script.
CLI = (sys.executable, "-m", "rtscore.cli")


class ChildFailed(RtscoreError):
    """A child exited, or did not say it was ready, in time; the message ends with its log's last lines."""


@dataclass
class Child:
    """One running `rtscore ...` process and the log its output goes to."""

    name: str
    args: list[str]
    popen: subprocess.Popen[bytes]
    log: Path
    ready: re.Match[str] | None = None
    stop_grace_s: float = 10.0
    # Children of one tier do not call each other (peers, such as the scorers): they stop together.
    tier: int = 0

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def command_line(self) -> str:
        """The command as a person would type it."""
        return " ".join(["rtscore", *self.args])


@dataclass
class Children:
    """Processes started in order; `stop_all` (also on exit, whatever the reason) stops them in reverse."""

    logs: Path
    env: dict[str, str]
    running: list[Child] = field(default_factory=list)
    # (name, exit status, seconds it took to stop) of each child stopped, in the order they stopped
    stopped: list[tuple[str, int | None, float]] = field(default_factory=list)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        args: Sequence[str],
        *,
        ready: str,
        timeout_s: float = 120.0,
        env: dict[str, str] | None = None,
        stop_grace_s: float = 10.0,
        tier: int | None = None,
    ) -> Child:
        """Start `rtscore ARGS` and wait until its log has a line matching `ready` (a regex)."""
        child = self.spawn(name, args, env=env, stop_grace_s=stop_grace_s, tier=tier)
        self.wait_ready(child, ready, timeout_s)
        return child

    def spawn(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stop_grace_s: float = 10.0,
        tier: int | None = None,
    ) -> Child:
        """Start `rtscore ARGS` without waiting for it (`tier`: default, one of its own after the last)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [*CLI, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, **(env or {})},
                start_new_session=True,
            )
        if tier is None:
            tier = max((c.tier for c in self.running), default=-1) + 1
        child = Child(name, list(args), popen, log, stop_grace_s=stop_grace_s, tier=tier)
        self.running.append(child)
        return child

    def wait_ready(self, child: Child, ready: str, timeout_s: float) -> re.Match[str]:
        """Block until the child's log matches `ready`; ChildFailed if it exits or the time runs out."""
        pattern = re.compile(ready)
        deadline = time.monotonic() + timeout_s
        while True:
            text = child.log.read_text(errors="replace") if child.log.exists() else ""
            found = pattern.search(text)
            if found:
                child.ready = found
                return found
            if child.popen.poll() is not None:
                raise ChildFailed(
                    f"{child.name} exited with status {child.popen.returncode} before it was ready"
                    f" ({child.command_line()}); log {child.log}:\n{child.tail()}"
                )
            if time.monotonic() > deadline:
                raise ChildFailed(
                    f"{child.name} was not ready within {timeout_s:g} s ({child.command_line()});"
                    f" log {child.log}:\n{child.tail()}"
                )
            time.sleep(0.1)

    def stop(self, *children: Child) -> None:
        """SIGTERM the children together (each drains), wait for each, SIGKILL any past its grace."""
        began = time.monotonic()
        for child in children:
            if child.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.popen.wait(timeout=max(0.0, began + child.stop_grace_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                with_kill(child)
            if child in self.running:
                self.running.remove(child)
                self.stopped.append((child.name, child.popen.returncode, round(time.monotonic() - began, 2)))

    def stop_all(self) -> None:
        """Stop every child still tracked, the last tier first; a second Ctrl-C does not interrupt it."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            for tier in sorted({c.tier for c in self.running}, reverse=True):
                self.stop(*[c for c in self.running if c.tier == tier])
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def detach(self) -> list[Child]:
        """Stop tracking the children (`--keep`): they keep running; returns them."""
        kept, self.running = self.running, []
        return kept


def end_stray_processes(grace_s: float = 3.0) -> list[int]:
    """End any process this one started and still runs (a load client cut short by Ctrl-C); their pids.

    Only this process's own children are touched, by pid: SIGTERM, then SIGKILL after `grace_s`.
    """
    import psutil

    strays = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    for process in strays:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(strays, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return [p.pid for p in strays]


def with_kill(child: Child) -> None:
    """SIGKILL the child's whole session and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.popen.wait()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
