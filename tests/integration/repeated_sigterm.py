"""A supervisor that keeps asking: SIGTERM every 0.2 ms from the moment a server is ready until it is
gone, so that one lands in every stage of the drain and the exit."""

from __future__ import annotations

import signal
import subprocess
import time


def exit_code_under_repeated_sigterm(command: list[str], env: dict[str, str], ready: str) -> int:
    """Start `command`, wait for `ready` in its first stdout line, then SIGTERM it until it exits."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert ready in banner, banner
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.0002)
        return proc.wait(10)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
