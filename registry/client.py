"""A blocking client of the registry for the CLI and scripts (RTSCORE_REGISTRY, RTSCORE_TOKEN; TLS with
RTSCORE_REGISTRY_CA, mutual TLS adding RTSCORE_REGISTRY_CERT and RTSCORE_REGISTRY_KEY)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from rtscore.errors import InvalidArgument, RtscoreError
from rtscore.tls import channel_credentials, wants_tls

CHUNK = 1 << 20
# upload chunk: fewer, larger messages move bytes faster through gRPC; servers accept up to 8 MiB
UPLOAD_CHUNK = 4 << 20
DEFAULT_ADDRESS = "127.0.0.1:50071"


class RegistryCallError(RtscoreError):
    """A call the registry refused; carries the status it answered with."""

    def __init__(self, method: str, err: grpc.RpcError) -> None:
        self.code = err.code()
        super().__init__(f"{method}: {self.code.name}: {err.details()}")


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_ref(ref: str) -> tuple[str, int]:
    """`name@version` into its parts."""
    name, sep, version = ref.rpartition("@")
    if not sep or not name or not version.isdigit():
        raise InvalidArgument(f"expected NAME@VERSION (e.g. fraud@3), got {ref!r}")
    return name, int(version)


class RegistryClient:
    """One channel to the registry; every call carries the bearer token."""

    def __init__(
        self, address: str | None = None, token: str | None = None, *, ca: Path | None = None
    ) -> None:
        self.address = address or os.environ.get("RTSCORE_REGISTRY", DEFAULT_ADDRESS)
        token = token if token is not None else os.environ.get("RTSCORE_TOKEN", "")
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        options = [
            ("grpc.max_receive_message_length", 2 * UPLOAD_CHUNK),
            ("grpc.max_send_message_length", 2 * UPLOAD_CHUNK),
        ]
        ca_path = ca or _env_path("RTSCORE_REGISTRY_CA")
        cert, key = _env_path("RTSCORE_REGISTRY_CERT"), _env_path("RTSCORE_REGISTRY_KEY")
        if wants_tls(ca_path, cert, key):
            creds = channel_credentials(ca_path, cert, key)  # cert + key: mutual TLS
            self.channel = grpc.secure_channel(self.address, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(self.address, options=options)
        self.stub = pb_grpc.RegistryStub(self.channel)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()

    def call(self, method: str, request: Any, timeout: float = 30.0) -> Any:
        """A unary call with deadline and token; refusals become RegistryCallError."""
        try:
            return getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as err:
            raise RegistryCallError(method, err) from err

    def stream(self, method: str, request: Any, timeout: float | None = None) -> Iterator[Any]:
        """A server-streaming call; refusals become RegistryCallError."""
        try:
            yield from getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as err:
            raise RegistryCallError(method, err) from err

    def register(self, name: str, bundle: Path, *, timeout: float = 3600.0, **header: Any) -> pb.Version:
        """Upload a bundle file as a new version of name (or get the version these bytes already are)."""
        size = bundle.stat().st_size
        head = pb.RegisterHeader(name=name, sha256=file_sha256(bundle), size=size, **header)

        def messages() -> Iterator[pb.RegisterChunk]:
            yield pb.RegisterChunk(header=head)
            with bundle.open("rb") as file:
                while chunk := file.read(UPLOAD_CHUNK):
                    yield pb.RegisterChunk(data=chunk)

        return self.call("RegisterVersion", messages(), timeout=timeout)

    def download(self, name: str, version: int, out: Path, *, timeout: float = 3600.0) -> str:
        """Write a version's bundle to out, checking its sha256; returns it."""
        digest = hashlib.sha256()
        announced = ""
        tmp = out.with_name(out.name + ".part")
        with tmp.open("wb") as file:
            for chunk in self.stream("DownloadBundle", pb.VersionRef(name=name, version=version), timeout):
                digest.update(chunk.data)
                file.write(chunk.data)
                announced = chunk.sha256 or announced
        if announced != digest.hexdigest():
            tmp.unlink(missing_ok=True)
            raise RtscoreError(
                f"download of {name}@{version} is corrupt: sha256 {digest.hexdigest()} != {announced}"
            )
        tmp.replace(out)
        return announced
