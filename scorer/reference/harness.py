"""`ReferenceHarness`: MLeap's JVM runtime driven from Python for scores, resaves and benchmarks."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from rtscore.errors import InvalidArgument, Unavailable
from scorer.reference.layout import HarnessLayout
from scorer.reference.session import ReferenceFailure, ServeSession

__all__ = ["ReferenceFailure", "ReferenceHarness"]

BundleFormat = Literal["json", "protobuf"]
FORMATS: tuple[BundleFormat, ...] = ("json", "protobuf")
# "frame": Transformer.transform on a `batch`-row DefaultLeapFrame; "row": MLeap's RowTransformer per row.
BenchMode = Literal["frame", "row"]


class ReferenceHarness:
    """MLeap's own runtime (0.20.0, JVM) behind rtscore's reference harness.

    `score` and `resave` share one JVM started on first use; `close()` (or `with`) stops it.
    `bench` and `score_text` start a JVM of their own, as a command-line user would.
    """

    def __init__(self, layout: HarnessLayout | None = None, *, timeout: float = 600.0) -> None:
        self.layout = layout or HarnessLayout.default()
        self.timeout = timeout
        self._session: ServeSession | None = None

    def __enter__(self) -> ReferenceHarness:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def build(self, *, force: bool = False) -> bool:
        """Build the harness with Maven unless it is up to date; True when Maven ran."""
        return self.layout.build(force=force)

    def ensure_runnable(self) -> None:
        """Build if needed and possible; `Unavailable` (one sentence on how to fix it) when it cannot run."""
        self.layout.ensure_runnable()

    def score(self, bundle: Path | str, frame: Mapping[str, Any]) -> dict[str, Any]:
        """Transform an MLeap JSON LeapFrame with the bundle; the result frame as MLeap writes it."""
        reply = self._serve().request("score", _existing(bundle, "bundle"), _frame_line(frame))
        parsed: dict[str, Any] = json.loads(reply)
        return parsed

    def resave(self, bundle: Path | str, out: Path | str, fmt: BundleFormat) -> Path:
        """Load the bundle and write it in `fmt`: a zip when `out` ends in .zip, else a directory."""
        if fmt not in FORMATS:
            raise InvalidArgument(f"unknown bundle format {fmt!r}: expected json or protobuf")
        target = Path(out).resolve()
        if target.exists():
            raise InvalidArgument(f"{target} already exists; choose a new path for the resaved bundle")
        self._serve().request("resave", _existing(bundle, "bundle"), str(target), fmt)
        return target

    def score_text(self, bundle: Path | str, frame_path: Path | str) -> str:
        """MLeap's JSON writer output, byte for byte, for a frame file (one JVM for this call)."""
        return self._run("score", _existing(bundle, "bundle"), _existing(frame_path, "frame"))

    def bench(
        self,
        bundle: Path | str,
        frame: Mapping[str, Any] | Path | str,
        *,
        iterations: int = 1000,
        warmup: int = 200,
        batch: int = 1,
        mode: BenchMode = "frame",
    ) -> dict[str, Any]:
        """Time MLeap's in-process transform of `batch`-row frames cycled from `frame`, in a JVM of its own.

        Returns `load_seconds` and `latency_ms` {avg, p50, p95, p99, max, min, stddev}, warm-up excluded.
        """
        if iterations < 1 or warmup < 0 or batch < 1:
            raise InvalidArgument("bench needs iterations >= 1, warmup >= 0 and batch >= 1")
        if mode not in ("frame", "row"):
            raise InvalidArgument(f"unknown bench mode {mode!r}: expected frame or row")
        counts = [
            "--iterations",
            str(iterations),
            "--warmup",
            str(warmup),
            "--batch",
            str(batch),
            "--mode",
            mode,
        ]
        if isinstance(frame, Mapping):
            with tempfile.TemporaryDirectory(prefix="rtscore-bench-") as folder:
                frame_file = Path(folder) / "frame.json"
                frame_file.write_text(_frame_line(frame), encoding="utf-8")
                out = self._run("bench", _existing(bundle, "bundle"), str(frame_file), *counts)
        else:
            out = self._run("bench", _existing(bundle, "bundle"), _existing(frame, "frame"), *counts)
        summary: dict[str, Any] = json.loads(out)
        return summary

    def close(self) -> None:
        """Stop the shared JVM, if one was started."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _serve(self) -> ServeSession:
        if self._session is None:
            self._session = ServeSession(self.layout, reply_timeout=self.timeout)
        return self._session

    def _run(self, *args: str) -> str:
        try:
            done = subprocess.run(
                self.layout.command(*args),
                capture_output=True,
                text=True,
                encoding="utf-8",
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise Unavailable(f"the reference harness took longer than {self.timeout:.0f} s") from err
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise ReferenceFailure(
                lines[-1] if lines else f"the harness exited with status {done.returncode}"
            )
        return done.stdout


def _existing(path: Path | str, what: str) -> str:
    resolved = Path(path).resolve()
    if not resolved.exists():
        raise InvalidArgument(f"{what} {path} does not exist")
    return str(resolved)


def _frame_line(frame: Mapping[str, Any]) -> str:
    try:
        # MLeap's JSON reader has no NaN or Infinity tokens, so refuse them here with a clearer message.
        return json.dumps(frame, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidArgument(f"frame is not JSON MLeap can read: {err}") from err
