"""Real processes for the extractor's tests: a small trained fraud bundle, scorers and extractors."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from extractor.spec import DEFAULT_SPEC
from tests.integration.cli_run import rtscore
from tests.paths import ROOT


class Served:
    """An `rtscore … serve` process on port 0 and the address its first line reported (after `ready`)."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout_s: float = 60.0,
        ready: str = "serving on",
    ) -> None:
        command = [sys.executable, "-m", "rtscore.cli", *args, "--port", "0"]
        # stderr to a file: a pipe nobody reads fills up and blocks the server's logging.
        self.log = Path(tempfile.mkstemp(prefix="rtscore-served-", suffix=".log")[1])
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        banner = self.proc.stdout.readline().strip() if readable else ""
        if ready not in banner:
            self.kill()
            raise AssertionError(f"{' '.join(args[:2])} did not start: {banner!r} {self.stderr()[-3000:]}")
        self.target = banner.split(f"{ready} ")[1].split()[0]

    def stderr(self) -> str:
        """What the process wrote to stderr so far."""
        return self.log.read_text(errors="replace")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


def scorer(bundle: Path, cache: Path) -> Served:
    """A scorer hosting `bundle` as model `fraud`."""
    return Served(
        "scorer", "serve", "--model", f"fraud={bundle}", "--drain-grace", "2", "--canary-interval", "0.5",
        env={"RTSCORE_CACHE_DIR": str(cache)},
    )  # fmt: skip


@pytest.fixture(scope="session")
def fraud_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, transactions) made with the CLI: a 10-tree forest trained on 4,000 generated
    transactions (`rtscore extractor generate` and `train`, checked by `check`), and 3,000 more."""
    folder = tmp_path_factory.mktemp("fraud")
    training, traffic, bundle = folder / "train.jsonl", folder / "traffic.jsonl", folder / "fraud.zip"
    for count, seed, out in ((4_000, 21, training), (3_000, 22, traffic)):
        made = rtscore("extractor", "generate", "--count", str(count), "--seed", str(seed), "--out", str(out))
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["transactions"] == count
    trained = rtscore(
        "extractor", "train", "--transactions", str(training), "--out", str(bundle),
        "--trees", "10", "--max-nodes", "300",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert report["held_out_auc"] > 0.8
    assert 0 < report["held_out_average_precision"] < report["held_out_auc"]
    checked = rtscore("extractor", "check", str(DEFAULT_SPEC), "--model", str(bundle))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "produces exactly the 32 inputs" in checked.stdout
    return bundle, traffic


@pytest.fixture
def started() -> Iterator[list[Served]]:
    """Processes a test starts; whatever still runs at the end is killed, and its log removed."""
    processes: list[Served] = []
    yield processes
    for process in processes:
        process.kill()
        process.log.unlink(missing_ok=True)


def metric(port: int, name: str) -> float:
    """The value of `name` on the Prometheus endpoint at `port` (0 when it has no sample yet)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_until(condition: object, timeout_s: float, what: str) -> None:
    """Poll `condition()` until true."""
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout_s}s")
        time.sleep(0.05)
