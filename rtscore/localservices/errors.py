"""Why a local service could not be provided: each message says what is wrong and what to do."""

from __future__ import annotations

from rtscore.errors import FailedPrecondition, Unavailable


class ToolMissing(Unavailable):
    """A program or download the local services need is not available on this machine."""


class ServiceFailed(Unavailable):
    """A local service was started or checked but did not answer in time."""


class ServicesNotRunning(FailedPrecondition):
    """The caller asked for endpoints of services that are not up."""
