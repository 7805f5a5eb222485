"""The shadow tier's errors, and the one place that decides retry versus dead-letter by an error's type."""

from __future__ import annotations

import asyncpg
from confluent_kafka import KafkaError, KafkaException

from rtscore.errors import InvalidArgument, Unavailable


class PoisonRecord(InvalidArgument):
    """A record no retry can fix (does not parse, lacks a model's inputs): it goes to the dead letters."""

    def __init__(self, reason: str, *, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.kind = kind


class StoreUnavailable(Unavailable):
    """The score database did not answer; the batch is retried, nothing is lost."""


# Errors that mean a dependency is away, not that the record is bad: the batch waits and is retried.
_RETRYABLE_DB = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)


# librdkafka's local codes for a broker that is away or slow, which it does not mark retriable itself.
_RETRYABLE_KAFKA = frozenset(
    {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT, KafkaError._ALL_BROKERS_DOWN}
)


def is_retryable(err: BaseException) -> bool:
    """Whether waiting and trying again can succeed: decided by the error's type, never its text."""
    if isinstance(err, PoisonRecord):
        return False
    if isinstance(err, Unavailable | TimeoutError):
        return True
    if isinstance(err, KafkaException):
        inner = err.args[0] if err.args else None
        return isinstance(inner, KafkaError) and bool(inner.retriable() or inner.code() in _RETRYABLE_KAFKA)
    return isinstance(err, _RETRYABLE_DB)
