"""Structured logs: one JSON object per line, carrying the request id, model and trace id of the call."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

# Set per call by the RPC wrapper; read by every log record emitted while the call runs.
request_id: ContextVar[str] = ContextVar("request_id", default="")
model_ref: ContextVar[str] = ContextVar("model_ref", default="")
trace_id: ContextVar[str] = ContextVar("trace_id", default="")

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
        for key, var in (("request_id", request_id), ("model", model_ref), ("trace_id", trace_id)):
            if value := var.get():
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
