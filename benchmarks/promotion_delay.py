"""Promotion-to-served delay: how long after a promotion every scorer following the registry answers
`fraud:champion` with the new version.

    .venv/bin/python -m benchmarks.promotion_delay [--promotions 20] [--scorers 2] [--out FILE.json]

Needs RTSCORE_DATABASE_URL (`rtscore services up`). A throwaway database gets a registry (in this
process) and versions 1 and 2 of the demo bundle; `--scorers` `rtscore scorer serve --registry`
processes follow pool `fraud` in `integration`. The first change promotes v2, each later one rolls back
to the previous champion, so the champion alternates. Each scorer is asked `fraud:champion` every
`--poll-ms`; a promotion's delay runs from just before the registry call to the first answer naming
the new version, on the slowest scorer. Prints a JSON summary (p50, p90, max in ms).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc

from benchmarks.report import machine_info
from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.db import open_pool
from registry.server import running_registry
from registry.settings import RegistrySettings

ENV, POOL = "integration", "fraud"
FIXTURES = Path(
    os.environ.get("RTSCORE_FIXTURES", Path(__file__).resolve().parents[2] / "shared/fixtures/mleap")
)


def _variant(folder: Path, tag: str) -> bytes:
    target = folder / f"demo-{tag}.zip"
    shutil.copyfile(FIXTURES / "demo.zip", target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(f"rtscore-build-{tag}.txt", tag)
    return target.read_bytes()


async def _register(stub: Any, metadata: Any, data: bytes, frame_json: str) -> None:
    head = pb.RegisterHeader(name="fraud", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                             canary_frame_json=frame_json, reason="bench")  # fmt: skip
    chunks = [pb.RegisterChunk(header=head)] + [pb.RegisterChunk(data=data[i : i + 65536])
                                                for i in range(0, len(data), 65536)]  # fmt: skip
    await stub.RegisterVersion(iter(chunks), metadata=metadata, timeout=60)


async def _two_versions(stub: Any, meta: dict[str, Any], workdir: Path) -> None:
    """fraud v1 champion and v2 shadow in the pool."""
    frame_json = (FIXTURES / "frame.demo.json").read_text()
    for tag in ("v1", "v2"):
        await _register(stub, meta["ds"], _variant(workdir, tag), frame_json)
    for version, role, who in ((1, "champion", "rel"), (2, "shadow", "ds")):
        request = pb.DeployRequest(
            name="fraud", version=version, environment=ENV, pool=POOL, role=role, reason="bench"
        )
        await stub.Deploy(request, metadata=meta[who], timeout=10)


def _start_scorer(registry: str, workdir: Path, log_name: str) -> tuple[subprocess.Popen[str], str]:
    token, cache, log = workdir / "token", workdir / "cache", workdir / log_name
    cmd = [sys.executable, "-m", "rtscore.cli", "scorer", "serve", "--port", "0", "--registry", registry,
           "--pool", POOL, "--env", ENV, "--token-file", str(token), "--scoring-threads", "1"]  # fmt: skip
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, "RTSCORE_CACHE_DIR": str(cache)})  # fmt: skip
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    if "serving on" not in banner:
        raise SystemExit(f"scorer did not start: {banner!r}; see {log}")
    return proc, banner.split("serving on ")[1].split()[0]


def _request() -> scorer_pb2.ScoreRequest:
    columns = [frame_pb2.Column(name=n, type=frame_pb2.ColumnType.COLUMN_TYPE_DOUBLE, doubles=[1.0])
               for n in ("demo:a", "demo:c", "demo:d")]  # fmt: skip
    return scorer_pb2.ScoreRequest(model="fraud:champion", frame=frame_pb2.Frame(rows=1, columns=columns))


async def _served(stub: Any, version: str, started: float, poll_s: float) -> float:
    request = _request()
    while True:
        reply = await stub.Score(request, timeout=5)
        if reply.version == version:
            return time.perf_counter() - started
        await asyncio.sleep(poll_s)


async def measure(promotions: int, n_scorers: int, poll_ms: float, workdir: Path) -> dict[str, Any]:
    """Run the promotions and return the delays (seconds) and their summary."""
    base = os.environ.get("RTSCORE_DATABASE_URL")
    if not base:
        raise SystemExit("set RTSCORE_DATABASE_URL (rtscore services env --export)")
    name = f"rtscore_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = urlunsplit(urlsplit(base)._replace(path="/" + name))
    procs: list[subprocess.Popen[str]] = []
    try:
        async with open_pool(dsn, max_size=2) as db:
            people = (("ds", "author"), ("rel", "approver"), ("scorer", "service"))
            tokens = {who: await create_token(db, who, role) for who, role in people}
        settings = RegistrySettings(database_url=dsn, port=0, store_dir=workdir / "store", grace_seconds=0.2)
        async with running_registry(settings) as registry, grpc.aio.insecure_channel(registry.address) as ch:
            stub = pb_grpc.RegistryStub(ch)
            meta = {w: (("authorization", f"Bearer {t}"),) for w, t in tokens.items()}
            await _two_versions(stub, meta, workdir)
            (workdir / "token").write_text(tokens["scorer"])
            started = [
                asyncio.to_thread(_start_scorer, registry.address, workdir, f"scorer{i}.log")
                for i in range(n_scorers)
            ]
            scorers = await asyncio.gather(*started)
            procs = [p for p, _ in scorers]
            channels = [grpc.aio.insecure_channel(target) for _, target in scorers]
            stubs = [scorer_pb2_grpc.ScorerStub(c) for c in channels]
            delays: list[float] = []
            for i in range(promotions):
                new = "2" if i % 2 == 0 else "1"
                t0 = time.perf_counter()
                if i == 0:
                    change: Any = pb.ChangeRequest(
                        name="fraud", version=2, environment=ENV, reason=f"bench {i}"
                    )
                    await stub.Promote(change, metadata=meta["rel"], timeout=10)
                else:
                    change = pb.RollbackRequest(name="fraud", environment=ENV, reason=f"bench {i}")
                    await stub.Rollback(change, metadata=meta["rel"], timeout=10)
                each = await asyncio.gather(*(_served(s, new, t0, poll_ms / 1e3) for s in stubs))
                delays.append(max(each))
                await asyncio.sleep(0.2)
            for channel in channels:
                await channel.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
            if proc.stdout is not None:
                proc.stdout.close()
        admin = await asyncpg.connect(base)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    ms = sorted(d * 1e3 for d in delays)
    return {
        "machine": machine_info(),
        "promotions": promotions,
        "scorers": n_scorers,
        "poll_ms": poll_ms,
        "delay_ms": {
            "p50": round(statistics.median(ms), 1),
            "p90": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "max": round(ms[-1], 1),
            "min": round(ms[0], 1),
        },
        "each_ms": [round(d * 1e3, 1) for d in delays],
    }


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print (and optionally write) the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--promotions", type=int, default=20)
    parser.add_argument("--scorers", type=int, default=2)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rtscore-promotion-") as folder:
        result = asyncio.run(measure(args.promotions, args.scorers, args.poll_ms, Path(folder)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
