"""One long-lived harness JVM in `serve` mode, so many requests pay the JVM start once."""

from __future__ import annotations

import subprocess
import tempfile
from typing import IO

from rtscore.errors import InvalidArgument, Unavailable
from scorer.reference.layout import HarnessLayout


class ReferenceFailure(InvalidArgument):
    """MLeap's JVM runtime rejected a bundle, a frame or a request; the message is MLeap's reason."""


class ServeSession:
    """A `ReferenceMain serve` process and its line protocol (tab-separated request, one reply line)."""

    def __init__(self, layout: HarnessLayout) -> None:
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        # stderr goes to a file: nobody reads it until the JVM dies, and a full pipe would block the JVM.
        self._process = subprocess.Popen(
            layout.command("serve"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        status, _, version = self._read_reply().partition("\t")
        if status != "ready":
            self.close()
            raise Unavailable(f"the reference harness did not start: unexpected greeting {status!r}")
        self.mleap_version = version

    def request(self, *fields: str) -> str:
        """Send one request and return the payload of its `ok` reply; `error` raises ReferenceFailure."""
        for field in fields:
            if "\t" in field or "\n" in field or "\r" in field:
                raise InvalidArgument(
                    f"cannot send {field[:60]!r} to the harness: it contains a tab or newline"
                )
        stdin = self._process.stdin
        if stdin is None or self._process.poll() is not None:
            raise Unavailable(f"the reference harness JVM has exited: {self._last_stderr()}")
        try:
            stdin.write("\t".join(fields) + "\n")
            stdin.flush()
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
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()

    def _read_reply(self) -> str:
        stdout = self._process.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            self._process.wait()
            raise Unavailable(f"the reference harness JVM exited unexpectedly: {self._last_stderr()}")
        return line.rstrip("\n")

    def _last_stderr(self) -> str:
        if self._stderr.closed:
            return "(no output)"
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self._process.returncode}"
