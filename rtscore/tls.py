"""TLS and mutual TLS from PEM files, for every rtscore server and client.

Servers take the registry's settings shape: `tls_cert` + `tls_key` turn TLS on, and `tls_client_ca`
(optional) makes it mutual: only clients with a certificate signed by that CA get in. Clients take
`ca` (the servers' CA; None means the system roots) and, for mutual TLS, `cert` + `key`.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from rtscore.errors import InvalidArgument


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InvalidArgument(f"cannot read the {what} {path}: {err.strerror or err}") from None


def server_credentials(
    cert: Path | None, key: Path | None, client_ca: Path | None = None
) -> grpc.ServerCredentials | None:
    """Server credentials from PEM files; None when no certificate is configured (plaintext)."""
    if cert is None and key is None:
        if client_ca is not None:
            raise InvalidArgument("a client CA (mutual TLS) needs the server's own tls_cert and tls_key")
        return None
    if cert is None or key is None:
        raise InvalidArgument("TLS needs both a certificate (tls_cert) and its private key (tls_key)")
    pair = [(_read(key, "TLS key"), _read(cert, "TLS certificate"))]
    if client_ca is None:
        return grpc.ssl_server_credentials(pair)
    return grpc.ssl_server_credentials(
        pair, root_certificates=_read(client_ca, "client CA"), require_client_auth=True
    )


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Client credentials: trust `ca` (or the system roots) and, for mutual TLS, present cert + key."""
    if (cert is None) != (key is None):
        raise InvalidArgument("a client certificate needs its key, and a key its certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "CA") if ca is not None else None,
        private_key=_read(key, "TLS key") if key is not None else None,
        certificate_chain=_read(cert, "TLS certificate") if cert is not None else None,
    )


def wants_tls(ca: Path | None, cert: Path | None, key: Path | None) -> bool:
    """Whether a client given these options should speak TLS."""
    return any(p is not None for p in (ca, cert, key))


def optional_channel_credentials(
    ca: Path | None, cert: Path | None, key: Path | None
) -> grpc.ChannelCredentials | None:
    """`channel_credentials` when any of the files is given; None (plaintext) when none is."""
    return channel_credentials(ca, cert, key) if wants_tls(ca, cert, key) else None
