"""An extractor that finds its scorers through the registry: `rtscore extractor serve --registry --pool
fraud --model fraud:champion --token-file F`, no `--scorers`. A real registry process on the services'
Postgres, two scorer processes following pool `fraud`, TLS everywhere (the registry's port, mutual TLS to
the scorers). Decisions follow a promotion under load with no failed call, and a scorer that leaves the
membership is no longer called while the other keeps answering; an extractor whose token the registry
refuses stops at once, saying so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from extractor.transactions import transaction_from_json
from protos.rtscore.v1 import extractor_pb2, extractor_pb2_grpc
from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.db import open_pool
from tests.integration.cli_run import rtscore
from tests.integration.extractor_processes import Served, fraud_files, started
from tests.integration.registry_fixtures import Caller, bundle_variant, database_url_fixture
from tests.integration.tls_certs import Certs, certs_fixture

__all__ = ["certs_fixture", "database_url_fixture", "fraud_files", "started"]

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]

ENV = "integration"
POOL = "fraud"
RATE = 100.0  # Evaluate calls per second, open loop
SWITCH_WITHIN_S = 5.0


@dataclass
class Load:
    """Open-loop Evaluate calls at RATE; every answer's send time, version and scorer kept."""

    stub: extractor_pb2_grpc.ExtractorStub
    transactions: list[extractor_pb2.Transaction]
    answers: list[tuple[float, str, str]] = field(default_factory=list)  # sent, version, scorer
    took: dict[float, float] = field(default_factory=dict)  # sent: seconds to the answer or failure
    failures: list[tuple[float, str]] = field(default_factory=list)  # sent, status
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, until: asyncio.Event) -> None:
        """Send until `until` is set, then wait for every answer."""
        began = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while not until.is_set():
            await asyncio.sleep(max(0.0, began + i / RATE - time.monotonic()))
            task = asyncio.create_task(self._one(self.transactions[i % len(self.transactions)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)

    async def _one(self, tx: extractor_pb2.Transaction) -> None:
        sent = time.monotonic()
        try:
            decision = await self.stub.Evaluate(tx, timeout=2.0)
        except grpc.aio.AioRpcError as err:
            self.took[sent] = time.monotonic() - sent
            self.failures.append((sent, f"{err.code().name}: {err.details()}"))
            return
        self.took[sent] = time.monotonic() - sent
        self.answers.append((sent, decision.version, decision.scorer))
        self.answered.set()

    async def answered_by_all(self, version: str, scorers: set[str]) -> None:
        """Until every one of `scorers` has answered a call with `version`."""
        while not all(self.first_of(version, s) is not None for s in scorers):
            self.answered.clear()
            await self.answered.wait()

    def first_of(self, version: str, scorer: str) -> float | None:
        """When the first call answered by `scorer` with `version` was sent."""
        return min((s for s, v, e in self.answers if v == version and e == scorer), default=None)


async def _tokens(database_url: str, folder: Path) -> dict[str, str]:
    """Tokens of the people and services of the test; the services' ones also written to files."""
    async with open_pool(database_url, max_size=2) as db:
        people = (("ds", "author"), ("rel", "approver"), ("scorer", "service"), ("extractor", "service"))
        tokens = {who: await create_token(db, who, role) for who, role in people}
    for who in ("scorer", "extractor"):
        (folder / f"{who}.token").write_text(tokens[who] + "\n")
    return tokens


async def test_decisions_follow_a_promotion_and_the_membership_with_no_failed_call(
    database_url: str,
    fraud_files: tuple[Path, Path],
    certs: Certs,
    started: list[Served],
    tmp_path: Path,
) -> None:
    bundle, traffic = fraud_files
    tokens = await _tokens(database_url, tmp_path)
    registry = await asyncio.to_thread(
        Served, "registry", "serve", ready="listening on",
        env={"RTSCORE_DATABASE_URL": database_url, "RTSCORE_REGISTRY_STORE_DIR": str(tmp_path / "store"),
             "RTSCORE_REGISTRY_GRACE_SECONDS": "0.2", "RTSCORE_REGISTRY_WATCH_POLL_SECONDS": "2",
             "RTSCORE_REGISTRY_TLS_CERT": str(certs.server_cert),
             "RTSCORE_REGISTRY_TLS_KEY": str(certs.server_key)},
    )  # fmt: skip
    started.append(registry)
    tls = grpc.ssl_channel_credentials(certs.ca.read_bytes())
    async with grpc.aio.secure_channel(registry.target, tls) as channel:
        stub = pb_grpc.RegistryStub(channel)
        author, approver = Caller("ds", tokens["ds"], stub), Caller("rel", tokens["rel"], stub)
        for version in (1, 2):
            await author.register("fraud", bundle_variant(tmp_path, f"v{version}", bundle), reason="trained")
        for caller, version, role in ((approver, 1, "champion"), (author, 2, "shadow")):
            deploy = pb.DeployRequest(
                name="fraud",
                version=version,
                environment=ENV,
                pool=POOL,
                role=role,
                reason=f"{role} v{version}",
            )
            await caller.call("Deploy", deploy)

        def following_scorer(i: int) -> Served:
            return Served(
                "scorer", "serve", "--registry", registry.target, "--pool", POOL, "--env", ENV,
                "--token-file", str(tmp_path / "scorer.token"), "--registry-ca", str(certs.ca),
                "--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
                "--tls-client-ca", str(certs.ca), "--heartbeat-ttl", "2", "--drain-grace", "2",
                "--scoring-threads", "1",
                env={"RTSCORE_CACHE_DIR": str(tmp_path / "cache"), "RTSCORE_SCORER_LEAVE_GRACE_S": "1.0"},
            )  # fmt: skip

        scorers = list(await asyncio.gather(*(asyncio.to_thread(following_scorer, i) for i in range(2))))
        started.extend(scorers)
        extractor = await asyncio.to_thread(
            Served, "extractor", "serve", "--registry", registry.target, "--pool", POOL,
            "--environment", ENV, "--model", "fraud:champion",
            "--token-file", str(tmp_path / "extractor.token"), "--registry-ca", str(certs.ca),
            "--ca", str(certs.ca), "--cert", str(certs.client_cert), "--key", str(certs.client_key),
            "--wait-ready", "30", "--score-timeout-ms", "1000",
        )  # fmt: skip
        started.append(extractor)
        with traffic.open() as handle:
            transactions = [transaction_from_json(json.loads(next(handle))) for _ in range(1_000)]
        targets = {s.target for s in scorers}

        async with grpc.aio.insecure_channel(extractor.target) as to_extractor:
            evaluate = extractor_pb2_grpc.ExtractorStub(to_extractor)
            first = await evaluate.Evaluate(transactions[0], timeout=5)
            assert (first.model, first.version) == ("fraud", "1")
            assert first.scorer in targets

            load = Load(evaluate, transactions)
            finish = asyncio.Event()
            running = asyncio.create_task(load.run(finish))
            await asyncio.sleep(1.5)
            promoted_at = time.monotonic()
            await approver.call(
                "Promote", pb.ChangeRequest(name="fraud", version=2, environment=ENV, reason="v2 wins")
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(load.answered_by_all("2", targets), SWITCH_WITHIN_S)
            switched = {t: load.first_of("2", t) for t in targets}
            await asyncio.sleep(1.0)  # decisions on v2 for a while, from both scorers

            leaving, staying = scorers
            signalled_at = time.monotonic()
            leaving.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(leaving.proc.wait, 30)
            gone_at = time.monotonic()
            await asyncio.sleep(2.0)  # calls through the scorer that is left
            finish.set()
            await running

        failed = [f"{e}, sent at {s - promoted_at:+.3f} s from Promote, {s - signalled_at:+.3f} s from"
                  f" the SIGTERM, {s - gone_at:+.3f} s from the exit; calls sent within 50 ms took (ms)"
                  f" {sorted(round(t * 1e3) for n, t in load.took.items() if abs(n - s) < 0.05)}"
                  for s, e in load.failures]  # fmt: skip
        assert failed == [], extractor.stderr()[-4000:]
        assert len(load.answers) >= RATE * 5
        assert all(s is not None for s in switched.values()), f"not both scorers on v2: {switched}"
        promoted_in = max(s for s in switched.values() if s is not None) - promoted_at
        assert promoted_in < SWITCH_WITHIN_S
        stale = [(s, e) for s, v, e in load.answers if v == "1" and s > (switched[e] or 0.0)]
        assert stale == [], "a scorer answered v1 after it had answered v2"
        before = {e for s, _v, e in load.answers if promoted_at < s < gone_at}
        assert before == targets  # both scorers took calls while both were members
        assert code == 0
        after = [(v, e) for s, v, e in load.answers if s > gone_at]
        assert len(after) >= RATE * 1.5
        assert set(after) == {("2", staying.target)}
        print(f"promotion reached both scorers {promoted_in * 1e3:.0f} ms after Promote;"
              f" {len(load.answers)} decisions, {len(after)} after a scorer left")  # fmt: skip
        assert extractor.stop() == 0

        # An extractor whose token the registry refuses stops at once, saying so, rather than waiting
        # out --wait-ready for a pool it will never be shown.
        (tmp_path / "bad.token").write_text("not-a-token\n")
        began = time.monotonic()
        refused = await asyncio.to_thread(
            rtscore, "extractor", "serve", "--port", "0", "--registry", registry.target, "--pool", POOL,
            "--environment", ENV, "--model", "fraud:champion", "--token-file", str(tmp_path / "bad.token"),
            "--registry-ca", str(certs.ca), "--wait-ready", "30", timeout=30,
        )  # fmt: skip
        took = time.monotonic() - began
    assert refused.returncode != 0
    assert "the registry refused WatchMembers: " in refused.stderr, refused.stderr[-2000:]
    assert took < 15.0, f"a refused token took {took:.1f} s to report"
