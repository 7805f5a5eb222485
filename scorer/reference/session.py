"""One long-lived harness JVM in `serve` mode, so many requests pay the JVM start once."""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import threading
import time
from typing import IO

from rtscore.errors import InvalidArgument, Unavailable
from scorer.reference.layout import HarnessLayout


class ReferenceFailure(InvalidArgument):
    """MLeap's JVM runtime rejected a bundle, a frame or a request; the message is MLeap's reason."""


class ServeSession:
    """A `ReferenceMain serve` process and its line protocol (tab-separated request, one reply line).

    `reply_timeout` bounds each wait for a reply (the first one includes the JVM start and a bundle load);
    a JVM that misses it is killed.
    """

    def __init__(self, layout: HarnessLayout, *, reply_timeout: float = 300.0) -> None:
        self.reply_timeout = reply_timeout
        self._pending = b""
        # One request in flight at a time: replies carry no id, so the protocol is strictly in order.
        self._lock = threading.Lock()
        command = layout.command("serve")  # raises Unavailable before anything is opened
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        # stderr goes to a file: nobody reads it until the JVM dies, and a full pipe would block the JVM.
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0
        )
        try:
            status, _, version = self._read_reply().partition("\t")
            if status != "ready":
                raise Unavailable(f"the reference harness did not start: unexpected greeting {status[:80]!r}")
        except BaseException:
            self.close()
            raise
        self.mleap_version = version

    def request(self, *fields: str) -> str:
        """Send one request and return the payload of its `ok` reply; `error` raises ReferenceFailure."""
        with self._lock:
            return self._exchange(fields)

    def _exchange(self, fields: tuple[str, ...]) -> str:
        for field in fields:
            if "\t" in field or "\n" in field or "\r" in field:
                raise InvalidArgument(
                    f"cannot send {field[:60]!r} to the harness: it contains a tab or newline"
                )
        stdin = self._process.stdin
        if stdin is None or self._process.poll() is not None:
            raise Unavailable(f"the reference harness JVM has exited: {self._last_stderr()}")
        data = memoryview(("\t".join(fields) + "\n").encode("utf-8"))
        try:
            # stdin is unbuffered, and a raw write to a pipe may take only part of a large frame.
            while data:
                data = data[stdin.write(data) or 0 :]
        except BrokenPipeError as err:
            raise Unavailable(f"the reference harness JVM has exited: {self._last_stderr()}") from err
        status, _, payload = self._read_reply().partition("\t")
        if status == "ok":
            return payload
        if status == "error":
            raise ReferenceFailure(payload)
        raise Unavailable(f"the reference harness sent an unexpected reply {status[:80]!r}")

    def close(self) -> None:
        """Close stdin so the JVM exits; kill it if it does not. Safe to call twice."""
        if self._process.poll() is None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()

    def _read_reply(self) -> str:
        stdout = self._process.stdout
        assert stdout is not None  # Popen was given stdout=PIPE
        deadline = time.monotonic() + self.reply_timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], max(remaining, 0.0))
            if not ready:
                self._process.kill()
                self._process.wait()
                raise Unavailable(f"the reference harness did not answer within {self.reply_timeout:g} s")
            chunk = os.read(stdout.fileno(), 1 << 16)
            if not chunk:
                self._process.wait()
                raise Unavailable(f"the reference harness JVM exited unexpectedly: {self._last_stderr()}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8")

    def _last_stderr(self) -> str:
        if self._stderr.closed:
            return "(no output)"
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self._process.returncode}"
