"""Errors of the scorer service, each carrying the gRPC status a caller sees."""

from __future__ import annotations

import grpc

from rtscore.errors import FailedPrecondition, NotFound, RtscoreError, Unavailable


class ModelNotFound(NotFound):
    """No hosted model answers to the given reference."""


class OverloadError(RtscoreError):
    """In-flight work is at its bound; the caller should back off or try another scorer."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Draining(Unavailable):
    """The scorer is shutting down and takes no new work."""


class CanaryFailed(FailedPrecondition):
    """A model's canary frame did not produce its expected output."""
