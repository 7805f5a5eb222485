"""`.rtscore/services.json`: what `up` started (pids, ports, addresses), read by `status`, `env`, `down`."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


@dataclass
class ServiceRecord:
    """A service `up` started: where it answers, its pid and ports."""

    address: str
    pid: int | None = None
    port: int | None = None
    controller_port: int | None = None


class StateFile:
    """The JSON record of the services under one state folder, written atomically under a lock."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / "services.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock, so two `up`/`down` calls never race over the same services."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "services.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self) -> dict[str, ServiceRecord]:
        """The recorded services by name; empty when nothing was recorded or the file is unreadable."""
        try:
            raw: Any = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        known = {field.name for field in fields(ServiceRecord)}
        records: dict[str, ServiceRecord] = {}
        for name, values in raw.items():
            try:
                records[name] = ServiceRecord(**{k: v for k, v in values.items() if k in known})
            except (TypeError, AttributeError):
                continue  # unreadable: the service counts as not started by us
        return records

    def save(self, records: dict[str, ServiceRecord]) -> None:
        """Replace the record with `records`."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".json.tmp")
        scratch.write_text(json.dumps({name: asdict(r) for name, r in records.items()}, indent=2) + "\n")
        os.replace(scratch, self.path)
