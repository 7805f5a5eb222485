"""Registry errors beyond rtscore's base set, each with its gRPC status."""

from __future__ import annotations

import grpc

from rtscore.errors import RtscoreError


class AlreadyExistsError(RtscoreError):
    """The thing to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class AbortedError(RtscoreError):
    """A concurrent change won; the call may be retried."""

    code = grpc.StatusCode.ABORTED


class UnauthenticatedError(RtscoreError):
    """No valid bearer token came with the call."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(RtscoreError):
    """The caller's role may not make this call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class DataLossError(RtscoreError):
    """Stored bytes no longer match their sha256."""

    code = grpc.StatusCode.DATA_LOSS
