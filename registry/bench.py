"""Measure a registry: 1 GB register and download, promotions per second under contention, watch latency.

Usage: python -m registry.bench [--bundle-mb 1024] [--seconds 10] [--promoters 8]
Starts `rtscore registry serve` as a child process on a fresh database of RTSCORE_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from registry.access import create_token
from registry.client import RegistryCallError, RegistryClient
from registry.db import open_pool

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("RTSCORE_FIXTURES", ROOT.parent / "shared" / "fixtures" / "mleap"))


def big_bundle(path: Path, megabytes: int) -> Path:
    """demo.zip plus one stored (uncompressed) entry of `megabytes` MiB: a valid bundle of that size."""
    shutil.copyfile(FIXTURES / "demo.zip", path)
    block = os.urandom(1 << 20)
    with (
        zipfile.ZipFile(path, "a") as archive,
        archive.open(zipfile.ZipInfo("payload.bin"), "w", force_zip64=True) as entry,
    ):
        for _ in range(megabytes):
            entry.write(block)
    return path


@contextmanager
def fresh_database(base: str) -> Iterator[str]:
    """A throwaway database on the server of base."""
    name = f"rtscore_bench_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(base)._replace(path="/" + name))
    finally:
        asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


@contextmanager
def registry_process(database_url: str, store: Path) -> Iterator[str]:
    """`rtscore registry serve` in a child process; yields its address once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "RTSCORE_DATABASE_URL": database_url, "RTSCORE_REGISTRY_STORE_DIR": str(store)}
    args = [sys.executable, "-m", "rtscore.cli", "registry", "serve", "--port", str(port)]
    child = subprocess.Popen(args, env=env)
    address = f"127.0.0.1:{port}"
    try:
        grpc.channel_ready_future(grpc.insecure_channel(address)).result(timeout=60)
        yield address
    finally:
        child.terminate()
        child.wait(30)


def tokens(database_url: str) -> dict[str, str]:
    """One token per bench role."""

    async def create() -> dict[str, str]:
        async with open_pool(database_url, max_size=1) as pool:
            people = (("author", "author"), ("bob", "approver"), ("carol", "approver"), ("svc", "service"))
            return {name: await create_token(pool, name, role) for name, role in people}

    return asyncio.run(create())


def measure_big_bundle(address: str, token: str, megabytes: int, work: Path) -> dict[str, float]:
    """Seconds to register and to download a bundle of `megabytes` MiB."""
    bundle = big_bundle(work / "big.zip", megabytes)
    with RegistryClient(address, token) as client:
        started = time.perf_counter()
        version = client.register("big", bundle)
        registered = time.perf_counter() - started
        started = time.perf_counter()
        sha = client.download("big", version.version, work / "down.zip")
        downloaded = time.perf_counter() - started
    assert sha == version.sha256
    size = bundle.stat().st_size
    return {"bytes": size, "register_s": registered, "download_s": downloaded}


def prepare_contenders(address: str, people: dict[str, str], versions: int) -> None:
    """A model with `versions` versions, each shadow in production with a passing evaluation."""
    bundle = FIXTURES / "demo.zip"
    with RegistryClient(address, people["author"]) as author, RegistryClient(address, people["svc"]) as svc:
        for i in range(1, versions + 1):
            variant = Path(tempfile.mkdtemp()) / f"v{i}.zip"
            shutil.copyfile(bundle, variant)
            with zipfile.ZipFile(variant, "a") as archive:
                archive.writestr("variant.txt", str(i))
            author.register("contended", variant)
            for env in ("integration", "qa", "production"):
                deploy = pb.DeployRequest(
                    name="contended", version=i, environment=env, role="shadow", reason="b"
                )
                author.call("Deploy", deploy)
            svc.call(
                "RecordEvaluation",
                pb.EvaluationRequest(  # against the champion it will replace: none, then the one before
                    name="contended", candidate_version=i, champion_version=i - 1, environment="production",
                    sample_size=10**6, agreement=1.0, score_distance=0.0,
                ),
            )  # fmt: skip


def measure_promotions(
    address: str, people: dict[str, str], promoters: int, seconds: float
) -> dict[str, float]:
    """Promotions per second when `promoters` clients promote and roll back one model at once."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def promoter(index: int) -> None:
        token = people["bob" if index % 2 else "carol"]
        with RegistryClient(address, token) as client:
            while time.monotonic() < deadline:
                try:
                    client.call(
                        "Rollback",
                        pb.RollbackRequest(name="contended", environment="production", reason="bench"),
                    )
                    result = "ok"
                except RegistryCallError as err:
                    result = err.code.name
                with lock:
                    outcomes[result] += 1

    with RegistryClient(address, people["bob"]) as client:
        for version in (1, 2):
            promote = pb.ChangeRequest(
                name="contended", version=version, environment="production", reason="b"
            )
            client.call("Promote", promote)
    threads = [threading.Thread(target=promoter, args=(i,)) for i in range(promoters)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "promotions_per_s": outcomes["ok"] / elapsed, **dict(outcomes)}


def measure_watch(address: str, people: dict[str, str], changes: int) -> dict[str, float]:
    """Milliseconds from the start of a change's call to a watcher holding the new state."""
    received: list[float] = []
    with (
        RegistryClient(address, people["svc"]) as watcher,
        RegistryClient(address, people["bob"]) as author,
    ):
        request = pb.WatchDeploymentsRequest(environment="integration", pool="default")

        def watch() -> None:
            for _ in watcher.stream("WatchDeployments", request):
                received.append(time.perf_counter())
                if len(received) > changes:
                    return

        threading.Thread(target=watch, daemon=True).start()
        while not received:
            time.sleep(0.001)
        latencies = []
        for i in range(changes):
            seen = len(received)
            started = time.perf_counter()
            if i % 2 == 0:
                retire = pb.ChangeRequest(
                    name="contended", version=1, environment="integration", reason=f"off {i}"
                )
                author.call("Retire", retire)
            else:
                deploy = pb.DeployRequest(
                    name="contended", version=1, environment="integration", role="shadow", reason=f"on {i}"
                )
                author.call("Deploy", deploy)
            while len(received) == seen:
                time.sleep(0.0001)
            latencies.append((received[seen] - started) * 1000)
    latencies.sort()
    return {
        "changes": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "max_ms": latencies[-1],
    }


def main() -> None:
    """Run the three measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle-mb", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--promoters", type=int, default=8)
    parser.add_argument("--watch-changes", type=int, default=200)
    args = parser.parse_args()
    base = os.environ.get("RTSCORE_DATABASE_URL")
    if not base:
        raise SystemExit("set RTSCORE_DATABASE_URL (rtscore services up)")
    with tempfile.TemporaryDirectory() as tmp, fresh_database(base) as url:
        work = Path(tmp)
        people = tokens(url)
        with registry_process(url, work / "store") as address:
            results: dict[str, object] = {}
            if args.bundle_mb:
                results["bundle"] = measure_big_bundle(address, people["author"], args.bundle_mb, work)
            prepare_contenders(address, people, 3)
            results["promotions"] = measure_promotions(address, people, args.promoters, args.seconds)
            results["watch"] = measure_watch(address, people, args.watch_changes)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
