"""The scorer as an operator runs it: `rtscore scorer serve` processes on port 0 with real bundles,
the `rtscore score` client, canaries from files, SIGTERM drain under load, and --workers on one port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from scorer.bundle import load_bundle
from scorer.frame import LeapFrame
from tests.integration.repeated_sigterm import exit_code_under_repeated_sigterm
from tests.paths import FIXTURES

DEMO = FIXTURES / "demo.zip"
DEMO_FRAME = FIXTURES / "frame.demo.json"
CT = frame_pb2.ColumnType


class ScorerProcess:
    """A `rtscore scorer serve` subprocess and the address it reported."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", "--port", "0", *args]
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline().strip()
        if "serving on" not in self.banner:
            self.proc.wait(10)
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"scorer did not start: {self.banner!r} {stderr!r}")
        self.target = self.banner.split("serving on ")[1].split()[0]

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM, then wait; returns the exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


@pytest.fixture
def demo_scorer(tmp_path: Path) -> Iterator[ScorerProcess]:
    scorer = ScorerProcess(
        "--model", f"demo={DEMO}", "--drain-grace", "10", env={"RTSCORE_CACHE_DIR": str(tmp_path / "cache")}
    )  # fmt: skip
    yield scorer
    scorer.stop()


def rtscore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtscore.cli", *args], capture_output=True, text=True, timeout=60
    )


def demo_batch(rows: int) -> frame_pb2.Frame:
    rng = np.random.default_rng(7)
    columns = [
        frame_pb2.Column(name=n, type=CT.COLUMN_TYPE_DOUBLE, doubles=rng.normal(size=rows).tolist())
        for n in ("demo:a", "demo:c", "demo:d")
    ]
    return frame_pb2.Frame(rows=rows, columns=columns)


def test_score_cli_prints_what_bundle_score_prints(demo_scorer: ScorerProcess) -> None:
    served = rtscore("score", "--target", demo_scorer.target, "--model", "demo", "--frame", str(DEMO_FRAME))
    local = rtscore("bundle", "score", str(DEMO), "--frame", str(DEMO_FRAME))
    assert served.returncode == 0, served.stderr
    assert served.stdout == local.stdout
    assert json.loads(served.stdout)["schema"]["fields"][-1]["name"] == "demo:prediction"


def test_score_cli_failure_is_one_line_with_the_status(demo_scorer: ScorerProcess) -> None:
    result = rtscore("score", "--target", demo_scorer.target, "--model", "ghost", "--frame", str(DEMO_FRAME))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "rtscore score: NOT_FOUND: model 'ghost' is not hosted here (hosted: demo)"
    ]


def test_canary_from_files_gates_start_and_health(tmp_path: Path) -> None:
    frame = LeapFrame.from_mleap_json(json.loads(DEMO_FRAME.read_text()))
    expected = load_bundle(DEMO, cache=None).transform(frame).to_mleap_json()
    keep = [i for i, f in enumerate(expected["schema"]["fields"]) if f["name"] == "demo:prediction"]
    good: dict[str, Any] = {"schema": {"fields": [expected["schema"]["fields"][i] for i in keep]},
            "rows": [[row[i] for i in keep] for row in expected["rows"]]}  # fmt: skip
    (tmp_path / "good.json").write_text(json.dumps(good))
    env = {"RTSCORE_CACHE_DIR": str(tmp_path / "cache")}
    scorer = ScorerProcess(
        "--model", f"demo={DEMO}", "--canary", f"demo={DEMO_FRAME}:{tmp_path / 'good.json'}", env=env
    )
    try:
        with grpc.insecure_channel(scorer.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "demo"):
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert scorer.stop()[0] == 0
    good["rows"][1][0] += 1.0
    (tmp_path / "bad.json").write_text(json.dumps(good))
    args = [
        "scorer",
        "serve",
        "--port",
        "0",
        "--model",
        f"demo={DEMO}",
        "--canary",
        f"demo={DEMO_FRAME}:{tmp_path / 'bad.json'}",
    ]
    refused = subprocess.run(
        [sys.executable, "-m", "rtscore.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert refused.returncode == 1
    assert "column 'demo:prediction' row 1" in refused.stderr.splitlines()[-1]


def _first_refusal(
    stub: scorer_pb2_grpc.ScorerStub,
    request: scorer_pb2.ScoreRequest,
    *,
    skipping: str = "",
    until: Callable[[], bool] = lambda: False,
) -> str | None:
    """Score `request` over and over until a call is refused (a refusal starting with `skipping` does
    not count); that refusal as `CODE: details`, or None once `until()` holds."""
    while not until():
        try:
            stub.Score(request, timeout=10)
        except grpc.RpcError as err:
            refusal = f"{err.code().name}: {err.details()}"
            if not skipping or not refusal.startswith(skipping):
                return refusal
    return None


def test_sigterm_drains_in_flight_calls_and_exits_zero(tmp_path: Path) -> None:
    # One call in flight at most, and one-row calls scored on the event loop (so they never hold the
    # slot across an await, and cannot keep the big call out): while the big call is on the server, a
    # one-row call is refused at once with RESOURCE_EXHAUSTED. That refusal, not a guess at how long
    # scoring takes, says the big call is in flight when SIGTERM is sent.
    scorer = ScorerProcess(
        "--model", f"demo={DEMO}", "--drain-grace", "10", "--max-in-flight", "1", "--inline-rows", "1",
        env={"RTSCORE_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    big = scorer_pb2.ScoreRequest(model="demo", frame=demo_batch(400_000), select=["demo:prediction"])
    small = scorer_pb2.ScoreRequest(model="demo", frame=demo_batch(1))
    outcome: dict[str, object] = {}
    busy = "RESOURCE_EXHAUSTED: scorer is at its bound of 1 in-flight calls"
    try:
        with grpc.insecure_channel(scorer.target) as channel:
            stub = scorer_pb2_grpc.ScorerStub(channel)
            stub.ListModels(scorer_pb2.ListModelsRequest(), timeout=5)  # connected before the race starts
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service="demo"), timeout=30)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

            def big_call() -> None:
                try:
                    outcome["reply"] = stub.Score(big, timeout=30)
                except grpc.RpcError as err:
                    outcome["error"] = err
                outcome["done"] = time.time()

            caller = threading.Thread(target=big_call)
            caller.start()
            held = _first_refusal(stub, small, until=lambda: "done" in outcome)
            signalled = time.time()
            scorer.proc.send_signal(signal.SIGTERM)
            assert str(held).startswith(busy), f"the big call was never seen in flight: {held}"
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            # Until the drain closes the gate a small call still finds the slot taken; then it is refused.
            refused = _first_refusal(stub, small, skipping=busy)
            caller.join(30)
    finally:
        code, stderr = scorer.stop()
    assert "error" not in outcome, outcome.get("error")
    reply = outcome["reply"]
    assert isinstance(reply, scorer_pb2.ScoreResponse)
    assert reply.frame.rows == 400_000
    assert refused is not None
    assert refused.startswith("UNAVAILABLE: the scorer is draining"), refused
    assert code == 0, stderr
    draining = [json.loads(line) for line in stderr.splitlines() if '"msg": "draining"' in line]
    assert len(draining) == 1, stderr
    # the log's time is cut to the millisecond: the drain began before `began + 1 ms`
    began = datetime.strptime(draining[0]["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    done = float(outcome["done"])  # type: ignore[arg-type]
    assert signalled - 0.001 <= began, "the drain began before SIGTERM was sent"
    assert began + 0.001 <= done, "the big call was answered before the drain began: nothing was drained"


def test_sigterm_repeated_until_the_scorer_is_gone_still_exits_zero(tmp_path: Path) -> None:
    # A supervisor that asks again while the process drains and exits must not make it die by signal.
    # Six runs: with the loop's own handlers, removed at the drain's end, one in 3 to 15 died.
    command = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", "--port=0", f"--model=demo={DEMO}"]
    env = {**os.environ, "RTSCORE_CACHE_DIR": str(tmp_path / "cache")}
    codes = [exit_code_under_repeated_sigterm(command, env, "serving on") for _ in range(6)]
    assert codes == [0] * 6


def test_workers_share_one_port_and_stop_together(tmp_path: Path) -> None:
    scorer = ScorerProcess(
        "--workers", "2", "--model", f"demo={DEMO}", env={"RTSCORE_CACHE_DIR": str(tmp_path / "c")}
    )
    try:
        port = int(scorer.target.rsplit(":", 1)[1])
        children = psutil.Process(scorer.proc.pid).children()
        assert len(children) == 2
        for child in children:
            listening = [c for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
            assert [c.laddr.port for c in listening] == [port], (
                f"worker {child.pid} is not on the shared port"
            )
        for _ in range(8):  # fresh connections land on either worker; each must answer
            with grpc.insecure_channel(
                scorer.target, options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                reply = scorer_pb2_grpc.ScorerStub(channel).Score(
                    scorer_pb2.ScoreRequest(model="demo", frame=demo_batch(1)), timeout=10
                )
                assert reply.frame.columns[-1].name == "demo:prediction"
    finally:
        code, stderr = scorer.stop()
    assert code == 0, stderr
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


@pytest.mark.parametrize(("choice", "loop_module"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_the_scorer_runs_on_uvloop_unless_told_otherwise(
    tmp_path: Path, choice: str | None, loop_module: str
) -> None:
    args = ["--model", f"demo={DEMO}", *(["--event-loop", choice] if choice else [])]
    scorer = ScorerProcess(*args, env={"RTSCORE_CACHE_DIR": str(tmp_path / "cache")})
    try:
        with grpc.insecure_channel(scorer.target) as channel:
            reply = scorer_pb2_grpc.ScorerStub(channel).Score(
                scorer_pb2.ScoreRequest(model="demo", frame=demo_batch(3)), timeout=10
            )
    finally:
        code, stderr = scorer.stop()
    assert reply.frame.rows == 3
    assert code == 0
    listening = [json.loads(line) for line in stderr.splitlines() if '"scorer listening"' in line]
    assert len(listening) == 1
    assert listening[0]["event_loop"].split(".")[0] == loop_module
