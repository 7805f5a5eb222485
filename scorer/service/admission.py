"""Admission control: overload is refused at once, never queued.

First, before any Python runs for a call: gRPC's core holds the calls it has received until the event
loop asks for the next one, and past `max_pending_calls` of them it refuses new ones itself (random
early detection from the soft limit up; the caller sees CANCELLED). Under overload this is the refusal
that matters: a call refused in Python still costs the loop about what an answer costs (its task, its
reads and writes), so at twice the capacity refusals in Python alone would take the loop's whole time.
A loop that is behind takes calls more slowly, so the core's queue is where an overload shows first.

Then two bounds, both checked when a call is read, before any work is spent on it:

- in-flight calls: past `limit`, a new call is refused;
- the caller's deadline: a call whose time left cannot cover the time it needs (its expected transform
  time plus the calls ahead of it on the scoring threads, plus a margin for sending the reply) is refused.
  Under overload, calls wait in gRPC's queue before the scorer reads them; the deadline left when one is
  read says how long it waited, so a call that could only finish late is refused instead of scored for
  nobody. The refusal is RESOURCE_EXHAUSTED, which the pool client retries on another scorer.
"""

from __future__ import annotations

import time

from scorer.service.errors import Draining, OverloadError

# An idle scorer that refused every call with a deadline for this long lets the next one through.
PROBE_AFTER_S = 1.0

# gRPC core's channel arguments for its queue of received calls not yet requested by the server.
_PENDING_SOFT = "grpc.server.max_pending_requests"
_PENDING_HARD = "grpc.server.max_pending_requests_hard_limit"


def pending_call_options(max_pending: int, soft_limit: int) -> list[tuple[str, int]]:
    """Server options bounding gRPC core's queue of calls the event loop has not taken yet: from
    `soft_limit` pending calls on, a new call is refused with a probability growing to 1 at
    `max_pending`; none when `max_pending` is 0 (the core's own defaults, 1,000 and 3,000, apply)."""
    if max_pending < 0 or soft_limit < 0:
        raise ValueError(f"pending-call limits must be >= 0, got {max_pending} and {soft_limit}")
    if max_pending == 0:
        return []
    if soft_limit > max_pending:
        raise ValueError(f"the soft limit {soft_limit} exceeds the pending-call bound {max_pending}")
    return [(_PENDING_SOFT, soft_limit), (_PENDING_HARD, max_pending)]


class AdmissionGate:
    """Counts in-flight calls; refuses new ones past `limit`, past their deadline, or once closed."""

    def __init__(self, limit: int, *, deadline_margin_s: float = 0.001, threads: int = 1) -> None:
        if limit < 1:
            raise ValueError(f"in-flight limit must be at least 1, got {limit}")
        if deadline_margin_s < 0:
            raise ValueError(f"deadline margin must be >= 0, got {deadline_margin_s}")
        self.limit = limit
        self.deadline_margin_s = deadline_margin_s
        self._threads = max(threads, 1)
        self.in_flight = 0
        self.closed = False
        self.refused_late = 0  # calls refused because they could not finish before their deadline
        self._last_admitted = time.monotonic()

    def acquire(self, deadline_left_s: float | None = None, expected_s: float = 0.0) -> None:
        """Take one in-flight slot, or refuse at once.

        `deadline_left_s` is the caller's time left (None: no deadline); `expected_s` what this call's
        transform is expected to take.
        """
        if self.closed:
            raise Draining("the scorer is draining and accepts no new calls")
        in_flight = self.in_flight
        if in_flight >= self.limit:
            # Refusing now keeps the tail short: a queued call would only time out later.
            raise OverloadError(f"scorer is at its bound of {self.limit} in-flight calls; retry with backoff")
        if deadline_left_s is not None:
            # the calls ahead share the scoring threads; each is assumed to cost what this one does
            needed = expected_s * (1 + in_flight / self._threads) + self.deadline_margin_s
            if deadline_left_s < needed and not self._probe_due(in_flight):
                self.refused_late += 1
                raise OverloadError(
                    f"the call's deadline leaves {1e3 * deadline_left_s:.2f} ms, it needs about "
                    f"{1e3 * needed:.2f} ms here; refused at once instead of answered late"
                )
            self._last_admitted = time.monotonic()
        self.in_flight = in_flight + 1

    def _probe_due(self, in_flight: int) -> bool:
        """Whether to let a call through anyway: the scorer is idle and has admitted no call with a
        deadline for PROBE_AFTER_S, so the expected time may be stale (a model that got faster could
        otherwise be refused for ever, its refused calls never measuring it again)."""
        return in_flight == 0 and time.monotonic() - self._last_admitted >= PROBE_AFTER_S

    def release(self) -> None:
        """Give back one slot."""
        self.in_flight -= 1

    def close(self) -> None:
        """Refuse every call from now on."""
        self.closed = True
