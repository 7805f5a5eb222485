"""Errors of the scorer pool: each carries the gRPC status a caller acts on."""

from __future__ import annotations

import grpc

from rtscore.errors import RtscoreError

# Statuses after which the same call goes to another endpoint: the scorer did not score it. CANCELLED
# reaches a caller as a status only when the server or the transport ended the call (a scorer stopping,
# a reset stream); the pool's own cancellations surface as asyncio.CancelledError instead.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}
)
# Statuses of a scorer that is busy, not broken: its core's pending-call bound (CANCELLED) or its admission
# (RESOURCE_EXHAUSTED) refused the call. They make it look slow, so fewer calls go to it, but never eject
# it: ejecting a busy scorer would pile its share onto the others just as they are busy too.
OVERLOADED = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED})
# Statuses that say the caller sent something wrong: they pass through and never count against a scorer.
CALLER_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


class ScorerCallError(RtscoreError):
    """A scorer refused or failed the call; `code` is the status it answered with."""

    def __init__(self, endpoint: str, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.endpoint = endpoint
        self.details = details
        super().__init__(f"{endpoint}: {code.name}: {details}")


class DeadlineExceeded(RtscoreError):
    """The call's deadline passed before any scorer answered."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelNotHosted(RtscoreError):
    """Every connected scorer says it does not host the model."""

    code = grpc.StatusCode.NOT_FOUND
