"""The domain error base: every rtscore error knows its gRPC status."""

from __future__ import annotations

import grpc


class RtscoreError(Exception):
    """An error a caller can act on; `code` is the gRPC status it maps to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(RtscoreError):
    """The caller sent something malformed."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RtscoreError):
    """The named thing does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(RtscoreError):
    """The system is not in a state that allows the call."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(RtscoreError):
    """A dependency is missing or not reachable; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class PermissionDenied(RtscoreError):
    """The caller's credentials do not allow the call; retrying with the same ones will not help."""

    code = grpc.StatusCode.PERMISSION_DENIED
