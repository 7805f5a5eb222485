"""Structured logs: one JSON object per line, carrying the request id, model and trace id of the call."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Protocol


class CallContext(Protocol):
    """What a log line says about the call it was written during."""

    @property
    def request_id(self) -> str:
        """The call's request id."""

    @property
    def model(self) -> str:
        """The model reference the call named."""

    @property
    def trace_id(self) -> str:
        """The call's trace id, or ''."""


# Set per call by the RPC wrapper; read by every log record emitted while the call runs.
current_call: ContextVar[CallContext | None] = ContextVar("current_call", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with its `extra` fields and the call's context."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call = current_call.get()
        if call is not None:
            for key, value in (("request_id", call.request_id), ("model", call.model),
                               ("trace_id", call.trace_id)):  # fmt: skip
                if value:
                    out[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str = "INFO", json_lines: bool = True) -> None:
    """Send the process's logs to stderr, as JSON lines unless told otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
