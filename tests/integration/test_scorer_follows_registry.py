"""Two `rtscore scorer serve --registry` processes following pool `fraud` of a real registry process:
promotion and rollback under load, the registry SIGKILLed and restarted, refused bundles and canaries,
membership with versions and health, drain and expiry, and admin calls locked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.ml.combust.mleap.pb import grpc_pb2_grpc, mleap_pb2
from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.db import open_pool
from scorer.bundle import load_bundle
from scorer.frame import LeapFrame
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    Caller,
    bundle_variant,
    database_url_fixture,
    status_of,
)
from tests.paths import FIXTURES

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

ENV = "integration"
POOL = "fraud"
TTL_S = 2.0
CT = frame_pb2.ColumnType


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A `rtscore …` subprocess whose first stdout line names its address; stderr goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, ready: str) -> None:
        self.args, self.env, self.log, self.ready = args, env, log, ready
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""
        self.serving_since = 0.0

    def start(self) -> Process:
        self.close_pipe()
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rtscore.cli", *self.args],
                stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **self.env},
            )  # fmt: skip
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline().strip()
        self.serving_since = time.perf_counter()
        if self.ready not in self.banner:
            self.proc.kill()
            raise AssertionError(f"{self.args[:2]} did not start: {self.banner!r}\n{self.log.read_text()}")
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self.close_pipe()
        return code

    def close_pipe(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.close_pipe()

    def log_messages(self, msg: str) -> list[dict[str, Any]]:
        """JSON log lines whose message is msg."""
        out = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("msg") == msg:
                    out.append(record)
        return out


@dataclass
class Scorer:
    process: Process
    target: str
    metrics: str
    channel: grpc.aio.Channel
    stub: scorer_pb2_grpc.ScorerStub
    mleap: grpc_pb2_grpc.MleapStub


@dataclass
class Fleet:
    registry: Process
    address: str
    approver: Caller
    author: Caller
    admin: Caller
    service: Caller
    scorers: list[Scorer]
    store: Path
    tmp: Path
    sha: dict[int, str] = field(default_factory=dict)

    async def wait_members(self, check: Any, seconds: float = 10.0, env: str = ENV) -> pb.Membership:
        """The first WatchMembers message of env/fraud for which check(message) holds."""
        channel = grpc.aio.insecure_channel(self.address)
        stub = pb_grpc.RegistryStub(channel)
        call = stub.WatchMembers(
            pb.WatchMembersRequest(environment=env, pool=POOL), metadata=self.service.metadata
        )
        try:
            async with asyncio.timeout(seconds):
                async for message in call:
                    if check(message):
                        return message
        finally:
            call.cancel()
            await channel.close()
        raise AssertionError("membership stream ended")


def score_request() -> scorer_pb2.ScoreRequest:
    columns = [frame_pb2.Column(name=n, type=CT.COLUMN_TYPE_DOUBLE, doubles=[v])
               for n, v in (("demo:a", 1.0), ("demo:c", 2.0), ("demo:d", 3.0))]  # fmt: skip
    return scorer_pb2.ScoreRequest(model="fraud:champion", frame=frame_pb2.Frame(rows=1, columns=columns))


@dataclass
class Load:
    """Open-loop single-row Score calls on fraud:champion, alternating between the scorers."""

    scorers: list[Scorer]
    rate: float = 300.0
    calls: list[tuple[int, float, float, str]] = field(default_factory=list)  # scorer, sent, done, version
    failures: list[str] = field(default_factory=list)

    async def _one(self, index: int, request: scorer_pb2.ScoreRequest) -> None:
        sent = time.perf_counter()
        try:
            reply = await self.scorers[index].stub.Score(request, timeout=2.0)
        except grpc.aio.AioRpcError as err:
            self.failures.append(f"scorer {index}: {err.code().name}: {err.details()}")
            return
        self.calls.append((index, sent, time.perf_counter(), reply.version))

    async def run(self, stop: asyncio.Event) -> None:
        request = score_request()
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        n = 0
        while not stop.is_set():
            task = asyncio.create_task(self._one(n % len(self.scorers), request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.rate - time.perf_counter()))
        await asyncio.gather(*tasks)

    def first_answer(self, index: int, version: str, after: float) -> float | None:
        done = [d for i, s, d, v in self.calls if i == index and v == version and s >= after]
        return min(done) if done else None

    def stale_after(self, index: int, switched: float, old: str) -> list[float]:
        """Calls to scorer index sent after it first answered the new version that still named old."""
        return [s for i, s, _d, v in self.calls if i == index and s > switched and v == old]


@asynccontextmanager
async def under_load(scorers: list[Scorer]) -> AsyncIterator[Load]:
    """Score at 300/s while in the block."""
    load = Load(scorers)
    stop = asyncio.Event()
    task = asyncio.create_task(load.run(stop))
    try:
        await asyncio.sleep(0.5)
        yield load
    finally:
        stop.set()
        await task


def canary_files() -> tuple[str, dict[str, Any]]:
    """The demo frame and the output the demo bundle gives for it (MLeap JSON)."""
    frame_json = (FIXTURES / "frame.demo.json").read_text()
    frame = LeapFrame.from_mleap_json(json.loads(frame_json))
    return frame_json, load_bundle(FIXTURES / "demo.zip", cache=None).transform(frame).to_mleap_json()


async def start_scorer(fleet_env: dict[str, str], args: list[str], log: Path) -> Scorer:
    process = Process(["scorer", "serve", "--port", "0", "--metrics-port", "0", *args], fleet_env, log,
                      "serving on")  # fmt: skip
    await asyncio.to_thread(process.start)
    words = process.banner.split()
    target = words[words.index("on") + 1]
    metrics = words[words.index("metrics") + 2]
    channel = grpc.aio.insecure_channel(target)
    return Scorer(process, target, metrics, channel, scorer_pb2_grpc.ScorerStub(channel),
                  grpc_pb2_grpc.MleapStub(channel))  # fmt: skip


async def change(caller: Caller, method: str, **fields: Any) -> None:
    request = {"Deploy": pb.DeployRequest, "Promote": pb.ChangeRequest, "Rollback": pb.RollbackRequest}[
        method
    ]
    await caller.call(method, request(name="fraud", environment=ENV, **fields))


@pytest_asyncio.fixture(name="fleet", scope="module", loop_scope="module")
async def fleet_fixture(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    """A registry process, versions 1 and 2 of `fraud` (champion, shadow) and two scorers following it."""
    tmp = tmp_path_factory.mktemp("follow")
    async with open_pool(database_url, max_size=2) as db:
        people = (("ops", "admin"), ("ds", "author"), ("rel", "approver"), ("scorer", "service"))
        tokens = {who: await create_token(db, who, role) for who, role in people}
    port = free_port()
    store = tmp / "store"
    registry = Process(
        ["registry", "serve", "--port", str(port)],
        {"RTSCORE_DATABASE_URL": database_url, "RTSCORE_REGISTRY_STORE_DIR": str(store),
         "RTSCORE_REGISTRY_GRACE_SECONDS": "0.2", "RTSCORE_REGISTRY_WATCH_POLL_SECONDS": "2"},
        tmp / "registry.log", "registry listening",
    )  # fmt: skip
    await asyncio.to_thread(registry.start)
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(address)
    stub = pb_grpc.RegistryStub(channel)
    callers = {who: Caller(who, token, stub) for who, token in tokens.items()}
    frame_json, _expected = canary_files()
    shas = {}
    for version in (1, 2):
        registered = await callers["ds"].register(
            "fraud", bundle_variant(tmp, f"v{version}"), canary_frame_json=frame_json, reason=f"v{version}"
        )
        shas[version] = registered.sha256
    await change(callers["rel"], "Deploy", version=1, pool=POOL, role="champion", reason="first")
    await change(callers["ds"], "Deploy", version=2, pool=POOL, role="shadow", reason="try v2")
    (tmp / "token").write_text(tokens["scorer"] + "\n")
    (tmp / "operator").write_text("operator-secret\n")
    env = {"RTSCORE_CACHE_DIR": str(tmp / "cache"), "RTSCORE_SCORER_REGISTRY_BACKOFF_MAX_S": "0.5",
           "RTSCORE_SCORER_LEAVE_GRACE_S": "1.0"}  # fmt: skip
    common = ["--registry", address, "--pool", POOL, "--env", ENV, "--token-file", str(tmp / "token"),
              "--heartbeat-ttl", str(TTL_S), "--drain-grace", "2", "--scoring-threads", "1"]  # fmt: skip
    scorers = await asyncio.gather(
        start_scorer(env, [*common, "--operator-token-file", str(tmp / "operator")], tmp / "scorer0.log"),
        start_scorer(env, common, tmp / "scorer1.log"),
    )
    fleet = Fleet(registry, address, callers["rel"], callers["ds"], callers["ops"], callers["scorer"],
                  list(scorers), store, tmp, shas)  # fmt: skip
    try:
        yield fleet
    finally:
        for scorer in scorers:
            scorer.process.stop()
            await scorer.channel.close()
        registry.stop()
        await channel.close()


def read_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as reply:
        body: bytes = reply.read()
    return body


def hosted_of(member: pb.Member) -> list[tuple[str, int, tuple[str, ...], str]]:
    return [(h.name, h.version, tuple(h.roles), h.health) for h in member.hosted]


async def test_membership_lists_both_scorers_with_their_versions_and_health(fleet: Fleet) -> None:
    targets = sorted(s.target for s in fleet.scorers)
    want = [("fraud", 1, ("champion",), "SERVING"), ("fraud", 2, ("shadow",), "SERVING")]
    members = await fleet.wait_members(
        lambda m: sorted(m.endpoints) == targets and all(hosted_of(x) == want for x in m.members)
    )
    listed = time.perf_counter() - max(s.process.serving_since for s in fleet.scorers)
    assert listed <= 1.0, f"listed {listed:.2f} s after the scorers reported serving"
    assert [m.health for m in members.members] == ["SERVING", "SERVING"]
    for scorer in fleet.scorers:
        for ref, version in (("fraud:champion", "1"), ("fraud:shadow", "2"), ("fraud@2", "2")):
            reply = await scorer.stub.Score(score_request().__class__(model=ref, frame=score_request().frame))
            assert reply.version == version
    # both processes share one bundle cache: each bundle was downloaded once for the host
    cached = sorted(p.name for p in (fleet.tmp / "cache" / "bundles").rglob("*.zip"))
    assert cached == sorted(f"{fleet.sha[v]}.zip" for v in (1, 2))
    downloads = sum(len(s.process.log_messages("bundle cached")) for s in fleet.scorers)
    assert downloads == 2


async def switch_under_load(
    fleet: Fleet, load: Load, method: str, new: str, old: str, **fields: Any
) -> float:
    """Make new the champion; returns the seconds until both scorers answered with it."""
    started = time.perf_counter()
    await change(fleet.approver, method, **fields)
    deadline = started + 5.0
    while time.perf_counter() < deadline:
        firsts = [load.first_answer(i, new, started) for i in range(2)]
        if all(f is not None for f in firsts):
            break
        await asyncio.sleep(0.02)
    assert all(f is not None for f in firsts), f"not every scorer answers with {new} after {method}"
    await asyncio.sleep(0.5)  # keep scoring on the new version for a while
    for index, first in enumerate(firsts):
        assert first is not None
        assert load.stale_after(index, first, old) == [], f"scorer {index} answered {old} after {new}"
    return max(f for f in firsts if f is not None) - started


async def test_promotion_and_rollback_reach_both_scorers_under_load_without_a_failed_call(
    fleet: Fleet,
) -> None:
    async with under_load(fleet.scorers) as load:
        promoted = await switch_under_load(fleet, load, "Promote", "2", "1", version=2, reason="v2 wins")
        rolled_back = await switch_under_load(fleet, load, "Rollback", "1", "2", reason="v2 misbehaves")
    assert load.failures == []
    sent = sorted(s for _i, s, _d, _v in load.calls)
    assert len(sent) / (sent[-1] - sent[0]) >= 270  # ~300/s offered, single rows
    assert promoted < 2.0
    assert rolled_back < 2.0
    print(f"promotion served in {promoted * 1e3:.0f} ms, rollback in {rolled_back * 1e3:.0f} ms,"
          f" {len(load.calls)} calls")  # fmt: skip


async def test_registry_sigkilled_under_load_fails_no_call_and_a_later_promotion_arrives(
    fleet: Fleet,
) -> None:
    loads_before = [len(s.process.log_messages("model loaded")) for s in fleet.scorers]
    async with under_load(fleet.scorers) as load:
        fleet.registry.signal(signal.SIGKILL)
        await asyncio.to_thread(fleet.registry.wait)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(fleet.registry.start)
        await asyncio.sleep(1.0)  # reconnected with nothing to change: nothing reloads
        assert [len(s.process.log_messages("model loaded")) for s in fleet.scorers] == loads_before
        await change(fleet.author, "Deploy", version=2, pool=POOL, role="shadow", reason="v2 again")
        await switch_under_load(fleet, load, "Promote", "2", "1", version=2, reason="v2 fixed")
    assert load.failures == []
    assert [len(s.process.log_messages("model loaded")) for s in fleet.scorers] == [
        n + 1 for n in loads_before
    ]  # v2 only


async def test_a_corrupt_bundle_and_a_failing_canary_are_refused_and_the_champion_keeps_serving(
    fleet: Fleet,
) -> None:
    frame_json, expected = canary_files()
    expected["rows"][0][-1] += 1.0  # a prediction this bundle does not make
    corrupt = await fleet.author.register("fraud", bundle_variant(fleet.tmp, "v3"), reason="v3")
    await fleet.author.register(
        "fraud", bundle_variant(fleet.tmp, "v4"), canary_frame_json=frame_json,
        canary_expected_json=json.dumps(expected), reason="v4",
    )  # fmt: skip
    stored = fleet.store / corrupt.sha256[:2] / corrupt.sha256
    stored.write_bytes(stored.read_bytes()[:-10] + b"x" * 10)
    await change(fleet.author, "Deploy", version=3, pool=POOL, role="shadow", reason="try v3")
    await change(fleet.author, "Deploy", version=4, pool=POOL, role="shadow", reason="try v4")
    await change(fleet.approver, "Promote", version=4, reason="v4 looks good")

    def refused_everywhere(m: pb.Membership) -> bool:
        return len(m.members) == 2 and all(sorted(r.version for r in x.refused) == [3, 4] for x in m.members)

    members = await fleet.wait_members(refused_everywhere)
    for member in members.members:
        reasons = {r.version: r.reason for r in member.refused}
        assert "does not match its sha256" in reasons[3] or "DATA_LOSS" in reasons[3]
        assert "canary failed" in reasons[4]
        assert hosted_of(member) == [("fraud", 2, ("champion",), "SERVING")]
    for scorer in fleet.scorers:
        reply = await scorer.stub.Score(score_request(), timeout=5)
        assert reply.version == "2"
        refusals = scorer.process.log_messages("desired version refused")
        assert {r["model"] for r in refusals} >= {"fraud@3", "fraud@4"}
        text = await asyncio.to_thread(read_url, f"http://{scorer.metrics}/metrics")
        assert b"rtscore_scorer_model_refusals_total" in text
    history = await fleet.admin.call("History", pb.HistoryRequest(name="fraud", environment=ENV))
    refused_events = {
        (e.version, json.loads(e.after_json)["endpoint"])
        for e in history.events
        if e.action == "scorer.refused"
    }
    assert refused_events == {(v, s.target) for v in (3, 4) for s in fleet.scorers}


async def test_admin_calls_are_refused_without_the_operator_token_and_change_nothing(fleet: Fleet) -> None:
    bundle = str(FIXTURES / "demo.zip")
    for scorer, token in zip(fleet.scorers, ("wrong-secret", None), strict=True):
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        before = await scorer.stub.ListModels(scorer_pb2.ListModelsRequest())
        calls = [
            scorer.stub.LoadModel(scorer_pb2.LoadModelRequest(name="x", path=bundle), metadata=metadata),
            scorer.stub.UnloadModel(scorer_pb2.UnloadModelRequest(model="fraud"), metadata=metadata),
            scorer.mleap.LoadModel(mleap_pb2.LoadModelRequest(model_name="x", uri=f"file://{bundle}"),
                                   metadata=metadata),
            scorer.mleap.UnloadModel(mleap_pb2.UnloadModelRequest(model_name="fraud"), metadata=metadata),
        ]  # fmt: skip
        for call in calls:
            code, details = await status_of(call)
            assert code == grpc.StatusCode.PERMISSION_DENIED, details
        assert await scorer.stub.ListModels(scorer_pb2.ListModelsRequest()) == before


async def test_workers_of_one_host_are_one_member_and_fetch_each_bundle_once(fleet: Fleet) -> None:
    await fleet.approver.call(
        "Deploy",
        pb.DeployRequest(name="fraud", version=1, environment="qa", pool=POOL, role="champion", reason="qa"),
    )
    host = Process(
        ["scorer", "serve", "--port", "0", "--workers", "2", "--registry", fleet.address, "--pool", POOL,
         "--env", "qa", "--token-file", str(fleet.tmp / "token"), "--heartbeat-ttl", str(TTL_S),
         "--scoring-threads", "1"],
        {"RTSCORE_CACHE_DIR": str(fleet.tmp / "workers-cache")}, fleet.tmp / "workers.log", "2 workers",
    )  # fmt: skip
    await asyncio.to_thread(host.start)
    try:
        endpoint = host.banner.split("serving on ")[1].split()[0]
        members = await fleet.wait_members(lambda m: any(x.hosted for x in m.members), env="qa")
        assert [(m.endpoint, hosted_of(m)) for m in members.members] == [
            (endpoint, [("fraud", 1, ("champion",), "SERVING")])
        ]
        assert len(host.log_messages("model loaded")) == 2  # each worker hosts it
        assert len(host.log_messages("bundle cached")) == 1  # one download for the host
        host.signal(signal.SIGTERM)
        await fleet.wait_members(lambda m: list(m.endpoints) == [], env="qa")
        assert await asyncio.to_thread(host.wait) == 0
    finally:
        host.stop()


async def test_a_draining_scorer_leaves_before_its_port_closes_and_a_killed_one_expires(fleet: Fleet) -> None:
    draining, killed = fleet.scorers
    draining.process.signal(signal.SIGTERM)
    await fleet.wait_members(lambda m: draining.target not in m.endpoints)
    health = health_pb2_grpc.HealthStub(draining.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)  # the port still answers
    assert reply.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert await asyncio.to_thread(draining.process.wait) == 0
    killed.process.signal(signal.SIGKILL)
    started = time.perf_counter()
    await fleet.wait_members(lambda m: list(m.endpoints) == [], seconds=TTL_S + 3)
    assert time.perf_counter() - started <= TTL_S + 0.5
