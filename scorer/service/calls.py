"""The one place gRPC calls meet domain errors, request ids, trace context and call metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
from opentelemetry import trace
from opentelemetry.propagate import extract

from rtscore.errors import RtscoreError
from scorer.service import logs

log = logging.getLogger(__name__)
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class CallRecorder(Protocol):
    """Receives one record per finished call."""

    def record_call(self, method: str, model: str, code: grpc.StatusCode, seconds: float) -> None:
        """Count a call."""


class HasRecorder(Protocol):
    """A servicer whose calls are recorded."""

    recorder: CallRecorder | None


def _model_of(request: Any) -> str:
    for attr in ("model", "model_name", "name"):
        value = getattr(request, attr, None)
        if isinstance(value, str) and value:
            return value
    return ""


def handled(method: str) -> Callable[[Callable[..., Awaitable[Resp]]], Callable[..., Awaitable[Resp]]]:
    """Wrap a servicer method: domain errors → their status, anything else → INTERNAL, logged."""

    def wrap(fn: Callable[..., Awaitable[Resp]]) -> Callable[..., Awaitable[Resp]]:
        @functools.wraps(fn)
        async def call(self: HasRecorder, request: Any, context: grpc.aio.ServicerContext) -> Resp:
            metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            rid = metadata.get("x-request-id") or uuid.uuid4().hex[:16]
            span = trace.get_current_span(extract(metadata))
            tid = span.get_span_context().trace_id
            model = _model_of(request)
            tokens = (logs.request_id.set(rid), logs.model_ref.set(model),
                      logs.trace_id.set(f"{tid:032x}" if tid else ""))  # fmt: skip
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await fn(self, request, context)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED  # the caller went away or its deadline passed
                raise
            except RtscoreError as err:
                code = err.code
                log.info("call refused", extra={"method": method, "code": code.name, "error": str(err)})
                await context.abort(code, str(err))
                raise  # unreachable: abort raises
            except Exception:
                if context.code() not in (None, grpc.StatusCode.OK):
                    code = context.code()
                    raise  # already aborted with a status of its own
                code = grpc.StatusCode.INTERNAL
                log.exception("call failed", extra={"method": method})
                await context.abort(code, f"internal error in {method} (request id {rid})")
                raise
            finally:
                if self.recorder is not None:
                    self.recorder.record_call(method, model, code, time.perf_counter() - start)
                logs.request_id.reset(tokens[0])
                logs.model_ref.reset(tokens[1])
                logs.trace_id.reset(tokens[2])

        return call

    return wrap
