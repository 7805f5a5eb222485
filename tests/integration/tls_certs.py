"""Test certificates made with the openssl command: a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate it signed, and an unrelated CA."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


def _issue(folder: Path, name: str, ca: str, subject: str, extensions: str) -> None:
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", folder / f"{name}.key", "-out", folder / f"{name}.csr", "-subj", subject)  # fmt: skip
    (folder / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", folder / f"{name}.csr", "-CA", folder / f"{ca}.pem",
             "-CAkey", folder / f"{ca}.key", "-CAcreateserial", "-days", "2",
             "-extfile", folder / f"{name}.ext", "-out", folder / f"{name}.pem")  # fmt: skip


@pytest.fixture(name="certs", scope="module")
def certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA."""
    folder = tmp_path_factory.mktemp("certs")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", folder / f"{ca}.key", "-out", folder / f"{ca}.pem", "-days", "2",
                 "-subj", f"/CN=rtscore test {ca}")  # fmt: skip
    _issue(folder, "server", "ca", "/CN=scorer", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _issue(folder, "client", "ca", "/CN=extractor", "extendedKeyUsage=clientAuth\n")
    return Certs(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem",
                folder / "client.key", folder / "other-ca.pem")  # fmt: skip
