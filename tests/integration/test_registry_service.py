"""The registry as a service: TLS when configured, health, reflection, metrics."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from registry.access import create_token
from registry.db import open_pool
from registry.server import running_registry
from tests.integration.registry_fixtures import database_url_fixture, registry_settings  # noqa: F401
from tests.integration.repeated_sigterm import exit_code_under_repeated_sigterm

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_with_a_certificate_the_port_speaks_tls_and_serves_health_reflection_and_metrics(
    database_url: str, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    metrics_port = free_port()
    settings = registry_settings(
        database_url, tmp_path / "store", tls_cert=cert, tls_key=key, metrics_port=metrics_port
    )
    async with open_pool(database_url, max_size=1) as pool:
        token = await create_token(pool, "tls-user", "author")
    async with running_registry(settings) as running:
        address = f"localhost:{running.port}"
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        async with grpc.aio.secure_channel(address, credentials) as channel:
            stub = pb_grpc.RegistryStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetVersion(
                    pb.VersionRef(name="absent", version=1), metadata=[("authorization", f"Bearer {token}")]
                )
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND, (
                "TLS worked; the model is what is missing"
            )
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="rtscore.v1.Registry")
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            listed = [s.name async for r in reflection for s in r.list_services_response.service]
            assert "rtscore.v1.Registry" in listed
        async with grpc.aio.insecure_channel(address) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.RegistryStub(plain).GetVersion(
                    pb.VersionRef(name="absent", version=1), timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        text = await asyncio.to_thread(fetch, url)
    # counters are per process, so other tests in this session may have added to it
    assert re.search(
        r'^rtscore_registry_calls_total\{code="NOT_FOUND",method="GetVersion"\} [1-9]', text, re.M
    )


async def test_sigterm_repeated_until_the_registry_is_gone_still_exits_zero(
    database_url: str, tmp_path: Path
) -> None:
    # a supervisor that asks again while the drained process is exiting must not make it die by signal
    env = {**os.environ, "RTSCORE_DATABASE_URL": database_url, "RTSCORE_REGISTRY_STORE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rtscore.cli", "registry", "serve", "--port", str(free_port())]
    assert await asyncio.to_thread(exit_code_under_repeated_sigterm, command, env, "registry listening") == 0
