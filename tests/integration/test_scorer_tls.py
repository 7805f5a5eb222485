"""The scorer's port over TLS and mutual TLS from certificate files, `rtscore score --ca/--cert/--key`,
and a standalone scorer's admin calls: the operator token and LoadModel limited to configured folders."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.ml.combust.mleap.pb import grpc_pb2_grpc, mleap_pb2
from protos.rtscore.v1 import scorer_pb2, scorer_pb2_grpc
from rtscore.tls import channel_credentials
from scorer.service.model import ModelSpec
from scorer.service.server import ScorerServer
from scorer.service.settings import ScorerSettings
from tests.integration.registry_fixtures import status_of
from tests.integration.tls_certs import Certs, certs_fixture  # noqa: F401 - fixture used by name
from tests.paths import FIXTURES

DEMO = FIXTURES / "demo.zip"
OPERATOR = (("authorization", "Bearer let-me-in"),)


@asynccontextmanager
async def scorer(tmp_path: Path, **settings: Any) -> AsyncIterator[ScorerServer]:
    values: dict[str, Any] = {"port": 0, "scoring_threads": 1, "canary_interval_s": 3600}
    async with ScorerServer(ScorerSettings(**values, **settings)) as server:
        await server.load(ModelSpec("demo", str(DEMO), "v1"))
        yield server


async def list_models(target: str, credentials: grpc.ChannelCredentials | None) -> Any:
    channel = (
        grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
    )
    async with channel:
        return await scorer_pb2_grpc.ScorerStub(channel).ListModels(scorer_pb2.ListModelsRequest(), timeout=5)


def score_cli(target: str, *tls: str | Path) -> subprocess.CompletedProcess[str]:
    args = ["score", "--target", target, "--model", "demo", "--frame", FIXTURES / "frame.demo.json", *tls]
    return subprocess.run(
        [sys.executable, "-m", "rtscore.cli", *map(str, args)], capture_output=True, text=True, timeout=60
    )


async def test_tls_and_mutual_tls_round_trips_and_clients_without_the_ca_fail_cleanly(
    certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTSCORE_CACHE_DIR", str(tmp_path / "cache"))
    async with scorer(tmp_path, tls_cert=certs.server_cert, tls_key=certs.server_key) as tls:
        target = f"127.0.0.1:{tls.port}"
        reply = await list_models(target, channel_credentials(certs.ca))
        assert [m.name for m in reply.models] == ["demo"]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await list_models(target, channel_credentials(certs.other_ca))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    mutual = {"tls_cert": certs.server_cert, "tls_key": certs.server_key, "tls_client_ca": certs.ca}
    async with scorer(tmp_path, **mutual) as mtls:
        target = f"127.0.0.1:{mtls.port}"
        with_cert = channel_credentials(certs.ca, certs.client_cert, certs.client_key)
        assert [m.name for m in (await list_models(target, with_cert)).models] == ["demo"]
        for credentials in (channel_credentials(certs.ca), None):  # no client certificate; plaintext
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await list_models(target, credentials)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        ok, no_ca = await asyncio.gather(
            asyncio.to_thread(score_cli, target, "--ca", certs.ca, "--cert", certs.client_cert,
                              "--key", certs.client_key),
            asyncio.to_thread(score_cli, target, "--ca", certs.other_ca, "--cert", certs.client_cert,
                              "--key", certs.client_key),
        )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["schema"]["fields"][-1]["name"] == "demo:prediction"
    assert no_ca.returncode == 1
    assert no_ca.stdout == ""
    # gRPC's own handshake log line may precede it; the command's verdict is its last line
    assert no_ca.stderr.splitlines()[-1].startswith("rtscore score: UNAVAILABLE:")
    assert "Traceback" not in no_ca.stderr


async def test_standalone_admin_calls_need_the_operator_token_and_a_configured_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTSCORE_CACHE_DIR", str(tmp_path / "cache"))
    allowed = tmp_path / "bundles"
    allowed.mkdir()
    shutil.copyfile(DEMO, allowed / "demo.zip")
    (allowed / "escape.zip").symlink_to(DEMO)  # inside by name, outside in fact
    (tmp_path / "operator").write_text("let-me-in\n")
    settings = {"load_dirs": [allowed], "operator_token_file": tmp_path / "operator"}
    async with (
        scorer(tmp_path, **settings) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub, mleap = scorer_pb2_grpc.ScorerStub(channel), grpc_pb2_grpc.MleapStub(channel)
        inside = str(allowed / "demo.zip")
        no_token = stub.LoadModel(scorer_pb2.LoadModelRequest(name="b", path=inside))
        assert (await status_of(no_token))[0] == grpc.StatusCode.PERMISSION_DENIED
        for path in (str(DEMO), str(allowed / "escape.zip"), str(allowed / ".." / "demo.zip")):
            code, details = await status_of(
                stub.LoadModel(scorer_pb2.LoadModelRequest(name="b", path=path), metadata=OPERATOR)
            )
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert "may only load bundles under" in details
        outside_uri = mleap_pb2.LoadModelRequest(model_name="b", uri=f"file://{DEMO}")
        code, _ = await status_of(mleap.LoadModel(outside_uri, metadata=OPERATOR))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        loaded = await stub.LoadModel(scorer_pb2.LoadModelRequest(name="b", path=inside), metadata=OPERATOR)
        assert loaded.name == "b"
        code, _ = await status_of(mleap.UnloadModel(mleap_pb2.UnloadModelRequest(model_name="b")))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        await mleap.UnloadModel(mleap_pb2.UnloadModelRequest(model_name="b"), metadata=OPERATOR)
        listed = await stub.ListModels(scorer_pb2.ListModelsRequest())
        assert [m.name for m in listed.models] == ["demo"]
