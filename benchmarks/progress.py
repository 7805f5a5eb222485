"""A one-line progress bar on stderr while a run is under way."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    """Redraws `[####....]  42%  4.2/10.0 s  ok 4123  err 0  998/s` in place; silent when not a terminal."""

    def __init__(self, label: str, seconds: float, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.seconds = seconds
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self._drawn = False

    def line(self, elapsed: float, ok: int, failed: int) -> str:
        """The text of the bar for this moment."""
        rate = (ok + failed) / elapsed if elapsed > 0 else 0.0
        if self.seconds > 0:
            done = min(elapsed / self.seconds, 1.0)
            bar = "#" * round(done * self.width)
            head = f"[{bar.ljust(self.width, '.')}] {done:4.0%}  {elapsed:.1f}/{self.seconds:.1f} s"
        else:
            head = f"{elapsed:.1f} s"
        return f"{self.label}  {head}  ok {ok}  err {failed}  {rate:.0f}/s"

    def __call__(self, elapsed: float, ok: int, failed: int) -> None:
        """Redraw the bar."""
        if self.enabled:
            self.stream.write("\r" + self.line(elapsed, ok, failed) + "\x1b[K")
            self.stream.flush()
            self._drawn = True

    def close(self) -> None:
        """Leave the last bar on its own line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
