"""Admission control: a bound on in-flight calls, past which calls are refused at once."""

from __future__ import annotations

from scorer.service.errors import Draining, OverloadError


class AdmissionGate:
    """Counts in-flight calls; refuses new ones past `limit` or once closed for a drain."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"in-flight limit must be at least 1, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.closed = False

    def acquire(self) -> None:
        """Take one in-flight slot, or refuse at once."""
        if self.closed:
            raise Draining("the scorer is draining and accepts no new calls")
        if self.in_flight >= self.limit:
            # Refusing now keeps the tail short: a queued call would only time out later.
            raise OverloadError(f"scorer is at its bound of {self.limit} in-flight calls; retry with backoff")
        self.in_flight += 1

    def release(self) -> None:
        """Give back one slot."""
        self.in_flight -= 1

    def close(self) -> None:
        """Refuse every call from now on."""
        self.closed = True
