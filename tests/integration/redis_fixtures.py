"""Where the shared Redis answers, and a private Redis a test may stop and start."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtscore.localservices import LocalServices, LocalServicesSettings
from rtscore.localservices.processes import free_port
from rtscore.localservices.redis import RedisServer
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="session")
def redis_url() -> str:
    """RTSCORE_REDIS_URL, else the Redis `rtscore services up` started for this checkout."""
    given = os.environ.get("RTSCORE_REDIS_URL")
    if given:
        return given
    url = LocalServices(REPO_ROOT).endpoints().redis_url
    assert url is not None
    return url


class PrivateRedis:
    """A Redis of one test's own, on a free port, in a tmp folder; stopped and restarted at will."""

    def __init__(self, home: Path) -> None:
        self.server = RedisServer(home, LocalServicesSettings(start_timeout_s=20, stop_timeout_s=5))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.pid: int | None = None

    def start(self) -> None:
        """Start (again) on the same port."""
        self.pid = self.server.start(self.port).pid

    def stop(self) -> None:
        """Stop it; a no-op when stopped."""
        self.server.stop(self.pid)
        self.pid = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started private Redis, stopped after the test."""
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()
