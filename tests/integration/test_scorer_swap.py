"""Live swap on a real server with real bundles: versions change under load and not one call fails."""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest

from protos.rtscore.v1 import frame_pb2, scorer_pb2, scorer_pb2_grpc
from scorer.bundle import load_bundle
from scorer.frame import LeapFrame
from scorer.service.model import ModelSpec
from scorer.service.server import ScorerServer
from scorer.service.settings import ScorerSettings
from tests.paths import FIXTURES

DEMO = FIXTURES / "demo.zip"
CT = frame_pb2.ColumnType


def demo_request() -> tuple[scorer_pb2.ScoreRequest, list[float]]:
    """One demo frame as a request, and the predictions the bundle gives for it in-process."""
    frame = LeapFrame.from_mleap_json(json.loads((FIXTURES / "frame.demo.json").read_text()))
    expected = load_bundle(DEMO, cache=None).transform(frame).column("demo:prediction").tolist()
    columns = [
        frame_pb2.Column(name=f.name, type=CT.COLUMN_TYPE_DOUBLE, doubles=frame.column(f.name).tolist())
        for f in frame.fields
    ]
    request = scorer_pb2.ScoreRequest(model="demo", frame=frame_pb2.Frame(rows=frame.n_rows, columns=columns))
    return request, expected


async def test_live_swap_under_load_fails_no_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSCORE_CACHE_DIR", str(tmp_path / "cache"))
    unpacked = tmp_path / "demo-dir"
    with zipfile.ZipFile(DEMO) as z:
        z.extractall(unpacked)  # the same model as a directory bundle: a second, distinct source
    sources = {"v2": unpacked, "v3": DEMO, "v4": unpacked}
    request, expected = demo_request()
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = asyncio.Event()
    settings = ScorerSettings(port=0, max_in_flight=1024, canary_interval_s=3600)
    async with ScorerServer(settings) as server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        await server.load(ModelSpec("demo", str(DEMO), "v1"))
        stub = scorer_pb2_grpc.ScorerStub(ch)

        async def client() -> None:
            while not stop.is_set():
                try:
                    reply = await stub.Score(request, timeout=10)
                except grpc.aio.AioRpcError as err:
                    failures.append(f"{err.code().name}: {err.details()}")
                    continue
                seen[reply.version] += 1
                got = list(reply.frame.columns[-1].doubles)
                if not np.allclose(got, expected, rtol=1e-12):
                    failures.append(f"{reply.version} answered {got}")

        clients = [asyncio.create_task(client()) for _ in range(8)]
        for version, path in sources.items():
            await asyncio.sleep(0.4)
            info = await stub.LoadModel(
                scorer_pb2.LoadModelRequest(name="demo", version=version, path=str(path))
            )
            assert info.version == version
        await asyncio.sleep(0.4)
        stop.set()
        await asyncio.gather(*clients)
        listed = await stub.ListModels(scorer_pb2.ListModelsRequest())
    assert failures == []
    assert set(seen) == {"v1", "v2", "v3", "v4"}, seen
    assert [(m.name, m.version) for m in listed.models] == [("demo", "v4")]
