"""Run the `rtscore` CLI of this checkout in a child process, as a user would."""

from __future__ import annotations

import subprocess
import sys

from tests.paths import ROOT


def rtscore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`rtscore ARGS…` from the repository root; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "rtscore.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
