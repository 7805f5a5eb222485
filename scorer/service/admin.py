"""Who may change what a scorer hosts: the operator token, and where standalone bundles may come from."""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from rtscore.errors import InvalidArgument, RtscoreError


class AdminRefused(RtscoreError):
    """An admin call (LoadModel, UnloadModel) the caller may not make."""

    code = grpc.StatusCode.PERMISSION_DENIED


def read_token(path: Path | None) -> str | None:
    """A token from a file (surrounding whitespace dropped); None without a file."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise InvalidArgument(f"cannot read the token file {path}: {err.strerror or err}") from None
    if not token:
        raise InvalidArgument(f"the token file {path} is empty")
    return token


class AdminGuard:
    """Checks LoadModel/UnloadModel callers.

    With an operator token, every admin call must present it (`authorization: Bearer <token>`). A scorer
    that follows a registry takes its models from the registry alone, so without a token it refuses every
    admin call. `load_dirs` (standalone) limits the bundles LoadModel may read to those directories.
    """

    def __init__(self, *, token: str | None, locked: bool, load_dirs: Sequence[Path] = ()) -> None:
        self._token = token.encode() if token else None
        self._locked = locked
        self._dirs = tuple(Path(os.path.realpath(d)) for d in load_dirs)

    def check_caller(self, context: Any, method: str) -> None:
        """Raise AdminRefused unless the call's metadata carries the operator token (when one is needed)."""
        if self._token is None:
            if self._locked:
                raise AdminRefused(
                    f"{method} is disabled: this scorer follows a registry, which decides what it hosts"
                    " (promote or retire there, or configure an operator token)"
                )
            return
        presented = b""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "bearer":
                    presented = token.strip().encode()
        if not hmac.compare_digest(presented, self._token):
            raise AdminRefused(f"{method} needs the operator token: send `authorization: Bearer <token>`")

    def check_path(self, path: str) -> None:
        """Raise AdminRefused if LoadModel may not read a bundle at `path`."""
        if not self._dirs:
            return
        real = Path(os.path.realpath(path))
        if not any(real.is_relative_to(d) for d in self._dirs):
            allowed = ", ".join(str(d) for d in self._dirs)
            raise AdminRefused(f"LoadModel may only load bundles under {allowed}; {path} is outside them")
