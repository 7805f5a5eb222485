"""The one place gRPC calls meet domain errors, request ids, trace context and call metrics.

Every call pays for this wrapper, so the common path does as little as it can: one clock read at each
end, one context variable, one tally. The request id and the trace id are read from the call's metadata
only when something asks for them (a log line, an error message); a request id is generated only for a
call that carried none and is then logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

import grpc
from opentelemetry import trace
from opentelemetry.propagate import extract

from rtscore.errors import RtscoreError
from scorer.service import logs

log = logging.getLogger(__name__)
Req = TypeVar("Req")
Resp = TypeVar("Resp")
_OK = grpc.StatusCode.OK
_CANCELLED = grpc.StatusCode.CANCELLED
_INTERNAL = grpc.StatusCode.INTERNAL
_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
_perf_counter = time.perf_counter


class CallRecorder(Protocol):
    """Receives one record per finished call."""

    def record_call(self, method: str, model: str, code: grpc.StatusCode, seconds: float) -> None:
        """Count a call."""


class HasRecorder(Protocol):
    """A servicer whose calls are recorded."""

    recorder: CallRecorder | None


class CallLabels:
    """What a call's log lines carry: its model, and its request and trace ids, read when first asked."""

    __slots__ = ("_context", "_request_id", "_trace_id", "model")

    def __init__(self, context: grpc.aio.ServicerContext, model: str) -> None:
        self._context = context
        self.model = model
        self._request_id: str | None = None
        self._trace_id: str | None = None

    @property
    def request_id(self) -> str:
        """The caller's `x-request-id`, or an id made up for this call (the same one every time)."""
        if self._request_id is None:
            self._request_id = _metadata_value(self._context, "x-request-id") or uuid.uuid4().hex[:16]
        return self._request_id

    @property
    def trace_id(self) -> str:
        """The W3C trace id of the caller's `traceparent`, or '' when it sent none."""
        if self._trace_id is None:
            self._trace_id = _trace_id(_metadata_value(self._context, "traceparent"))
        return self._trace_id


def _metadata_value(context: grpc.aio.ServicerContext, key: str) -> str:
    pairs: Iterable[tuple[str, Any]] = context.invocation_metadata() or ()
    for k, v in pairs:
        if k == key and isinstance(v, str):
            return v
    return ""


def _trace_id(traceparent: str) -> str:
    if not traceparent:
        return ""  # no trace context: OpenTelemetry is not consulted at all
    tid = trace.get_current_span(extract({"traceparent": traceparent})).get_span_context().trace_id
    return f"{tid:032x}" if tid else ""


class ThrottledLines:
    """Paces a log line that comes in floods: at most one per `every_s`, saying how many were skipped."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._next = 0.0
        self._skipped = 0

    def due(self) -> int | None:
        """The count skipped since the last line when a line is due now, else None (and one more skipped)."""
        now = time.monotonic()
        if now < self._next:
            self._skipped += 1
            return None
        skipped, self._skipped, self._next = self._skipped, 0, now + self.every_s
        return skipped


# Overload refusals come thousands a second exactly when the process has no time to spare.
_overload_lines = ThrottledLines()


# Which request attribute names the model, per request type; found once per type.
_MODEL_FIELD: dict[type, str | None] = {}


def _model_of(request: Any) -> str:
    kind = type(request)
    field = _MODEL_FIELD.get(kind, "")
    if field == "":
        field = next((a for a in ("model", "model_name", "name") if hasattr(request, a)), None)
        _MODEL_FIELD[kind] = field
    if field is None:
        return ""
    value = getattr(request, field)
    return value if isinstance(value, str) else ""


def handled(method: str) -> Callable[[Callable[..., Awaitable[Resp]]], Callable[..., Awaitable[Resp]]]:
    """Wrap a servicer method: domain errors → their status, anything else → INTERNAL, logged."""

    def wrap(fn: Callable[..., Awaitable[Resp]]) -> Callable[..., Awaitable[Resp]]:
        @functools.wraps(fn)
        async def call(self: HasRecorder, request: Any, context: grpc.aio.ServicerContext) -> Resp:
            start = _perf_counter()
            labels = CallLabels(context, _model_of(request))
            token = logs.current_call.set(labels)
            code = _OK
            try:
                return await fn(self, request, context)
            except asyncio.CancelledError:
                code = _CANCELLED  # the caller went away or its deadline passed
                raise
            except RtscoreError as err:
                code = err.code
                if code != _EXHAUSTED:
                    log.info("call refused", extra={"method": method, "code": code.name, "error": str(err)})
                elif (skipped := _overload_lines.due()) is not None:
                    detail = {"method": method, "code": code.name, "error": str(err)}
                    log.info("call refused", extra={**detail, "refused_unlogged": skipped})
                await context.abort(code, str(err))
                raise  # unreachable: abort raises
            except Exception:
                if context.code() not in (None, _OK):
                    code = context.code()
                    raise  # already aborted with a status of its own
                code = _INTERNAL
                log.exception("call failed", extra={"method": method})
                await context.abort(code, f"internal error in {method} (request id {labels.request_id})")
                raise
            finally:
                recorder = self.recorder
                if recorder is not None:
                    recorder.record_call(method, labels.model, code, _perf_counter() - start)
                logs.current_call.reset(token)

        return call

    return wrap
