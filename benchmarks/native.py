"""The native load generator (`rtscore-loadgen`, Go, in `benchmarks/goloadgen/`) driven from Python.

The requests are written once to a file of length-delimited messages; one or more `rtscore-loadgen`
processes send them and each writes a JSON result (its HdrHistogram, status codes, send lateness, its own
CPU time) and a timeline of its calls, which become the same `RunResult` the Python client returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from benchmarks.histogram import LatencyRecorder
from benchmarks.loadgen import LoadSpec, RunResult
from rtscore.errors import FailedPrecondition, InvalidArgument, RtscoreError, Unavailable

BINARY = "rtscore-loadgen"
RELAY_BINARY = "rtscore-relay"
# Set to a path to use another build of the binary.
BINARY_ENV = "RTSCORE_LOADGEN"
# Exit codes of rtscore-loadgen (benchmarks/goloadgen/main.go).
_EXIT_BAD_ARGS, _EXIT_UNAVAILABLE = 2, 3
# Processes started together wait this long for each other before the first send.
_STARTUP_S = 0.5

Progress = Callable[[float, int, int], None]


def binary(name: str = BINARY, override_env: str | None = BINARY_ENV) -> Path | None:
    """A built native program (the load generator unless named): $RTSCORE_LOADGEN for the load
    generator, else beside this Python (./dev builds them there), else on PATH."""
    override = os.environ.get(override_env) if override_env else None
    if override:
        return Path(override) if os.access(override, os.X_OK) else None
    beside = Path(sys.executable).parent / name
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def relay_binary() -> Path | None:
    """The native relay of `bench e2e` (`benchmarks/goloadgen/relay`), where ./dev built it."""
    return binary(RELAY_BINARY, None)


def write_requests(requests: Sequence[bytes], path: Path) -> None:
    """Write serialized messages as the binary reads them: a uvarint byte count before each one."""
    with path.open("wb") as out:
        for message in requests:
            out.write(_uvarint(len(message)))
            out.write(message)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def command(exe: Path, spec: LoadSpec, requests: Path, out: Path, timeline: Path) -> list[str]:
    """The command line of one `rtscore-loadgen` process for `spec`."""
    args = [str(exe), "--target", spec.target, "--method", spec.method, "--requests", str(requests)]
    args += ["--out", str(out), "--timeline", str(timeline), "--progress"]
    args += ["--mode", spec.mode, "--rate", repr(spec.rate), "--arrivals", spec.arrivals]
    if spec.count is not None:
        args += ["--count", str(spec.count)]
    else:
        args += ["--duration", repr(spec.duration)]
    args += ["--warmup", repr(spec.warmup), "--concurrency", str(spec.concurrency)]
    args += ["--channels", str(spec.channels), "--timeout", repr(spec.timeout), "--seed", str(spec.seed)]
    for option, path in (("--ca", spec.ca), ("--cert", spec.cert), ("--key", spec.key)):
        if path is not None:
            args += [option, str(path)]
    return [*args, "--max-in-flight", str(spec.max_in_flight)]


@dataclass
class _Process:
    """One running `rtscore-loadgen`, its output files and the counters its progress lines report."""

    spec: LoadSpec
    out: Path
    timeline: Path
    popen: subprocess.Popen[str]
    counters: list[int] = field(default_factory=lambda: [0, 0])
    elapsed: float = 0.0
    messages: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def read_stderr(self, stream: IO[str]) -> None:
        """Follow the progress lines; keep anything else for the error message."""
        for line in stream:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "progress":
                self.elapsed = float(parts[1])
                self.counters[0], self.counters[1] = int(parts[2]), int(parts[3])
            elif line.strip():
                self.messages.append(line.strip())


def run(
    spec: LoadSpec, requests: Sequence[bytes], processes: int = 1, progress: Progress | None = None
) -> RunResult:
    """Run `spec` from `processes` native client processes and merge what they measured."""
    exe = binary()
    if exe is None:
        raise FailedPrecondition(
            f"the native load generator ({BINARY}) is not built: ./dev builds it where Go is installed; "
            "or choose the Python client (--client python)"
        )
    spec.check()
    if not requests:
        raise InvalidArgument("no requests to send")
    from benchmarks.clients import merge

    with tempfile.TemporaryDirectory(prefix="rtscore-loadgen-") as tmp:
        folder = Path(tmp)
        request_file = folder / "requests.bin"
        write_requests(requests, request_file)
        start_at = time.time() + _STARTUP_S if processes > 1 else None
        shares = [spec.share(i, processes) for i in range(processes)] if processes > 1 else [spec]
        running = [_start(exe, share, request_file, folder, i, start_at) for i, share in enumerate(shares)]
        try:
            _wait(running, progress)
        finally:
            for process in running:
                if process.popen.poll() is None:
                    process.popen.kill()
                process.popen.wait()
                if process.reader is not None:
                    process.reader.join(timeout=5)
                if process.popen.stderr is not None:
                    process.popen.stderr.close()
        results = [_result(p) for p in running]
    return results[0] if processes == 1 else merge(spec, results, processes)


def _start(
    exe: Path, spec: LoadSpec, requests: Path, folder: Path, index: int, start_at: float | None
) -> _Process:
    out, timeline = folder / f"result-{index}.json", folder / f"timeline-{index}.bin"
    args = command(exe, spec, requests, out, timeline)
    if start_at is not None:
        args += ["--start-at", f"{start_at:.6f}"]
    popen = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    process = _Process(spec, out, timeline, popen)
    assert popen.stderr is not None
    process.reader = threading.Thread(target=process.read_stderr, args=(popen.stderr,), daemon=True)
    process.reader.start()
    return process


def _wait(running: list[_Process], progress: Progress | None) -> None:
    """Wait for every process, reporting their summed counters four times a second."""
    while alive := [p for p in running if p.popen.poll() is None]:
        if progress is not None:
            elapsed = max(p.elapsed for p in running)
            progress(elapsed, sum(p.counters[0] for p in running), sum(p.counters[1] for p in running))
        with contextlib.suppress(subprocess.TimeoutExpired):
            alive[0].popen.wait(timeout=0.25)
    for process in running:
        if process.reader is not None:
            process.reader.join(timeout=5)  # its last lines say why it failed
        code = process.popen.returncode
        if code == 0:
            continue
        why = process.messages[-1] if process.messages else f"{BINARY} exited with status {code}"
        if code == _EXIT_BAD_ARGS:
            raise InvalidArgument(why)
        if code == _EXIT_UNAVAILABLE:
            raise Unavailable(why)
        raise RtscoreError(why)


def _result(process: _Process) -> RunResult:
    """The RunResult of one finished process: its histogram as it recorded it, its calls' timeline."""
    data: dict[str, Any] = json.loads(process.out.read_text())
    recorder = LatencyRecorder()
    recorder.histogram.decode_and_add(data["histogram"])
    recorder.errors.update(data["errors"])
    calls = np.fromfile(process.timeline, dtype="<f8").reshape(-1, 4)
    recorder.sent_at = calls[:, 0].tolist()
    recorder.latency = calls[:, 1].tolist()
    recorder.ok = (calls[:, 2] == 0).tolist()
    recorder.waited = calls[:, 3].tolist()
    cpu = data["cpu"]
    return RunResult(
        process.spec,
        recorder,
        data["sent"],
        data["window_s"],
        data["send_lag_ms"],
        late_sends=data["late_sends"],
        client_cpu={k: cpu[k] for k in ("user_s", "system_s", "calls", "ms_per_call")},
        client="go",
    )
