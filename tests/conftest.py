"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtscore.localservices import LocalServices, ServiceEndpoints

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- Local services: Postgres and Kafka ------------------------------------------------------------
# `./dev test` starts them and exports RTSCORE_DATABASE_URL / RTSCORE_KAFKA_BOOTSTRAP; under plain
# `pytest` the session starts them itself (and stops them after, unless they were already running).

_ENV = ("RTSCORE_DATABASE_URL", "RTSCORE_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def service_endpoints() -> Iterator[ServiceEndpoints]:
    """Where Postgres and Kafka answer, exported as RTSCORE_DATABASE_URL / RTSCORE_KAFKA_BOOTSTRAP."""
    url, bootstrap = (os.environ.get(name) for name in _ENV)
    if url and bootstrap:
        yield ServiceEndpoints(url, bootstrap)
        return
    services = LocalServices(REPO_ROOT)
    was_running = all(status.running for status in services.status())
    endpoints = services.up()
    os.environ.update(zip(_ENV, (endpoints.database_url, endpoints.kafka_bootstrap), strict=True))
    try:
        yield endpoints
    finally:
        for name, before in zip(_ENV, (url, bootstrap), strict=True):
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before
        if not was_running:
            services.down()


@pytest.fixture(scope="session", autouse=True)
def _services_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """Bring the services up before any test marked `services` runs (fixtures may read the env)."""
    if any(item.get_closest_marker("services") for item in request.session.items):
        request.getfixturevalue("service_endpoints")


@pytest.fixture(scope="session")
def postgres_url(service_endpoints: ServiceEndpoints) -> str:
    """The services' Postgres (database `rtscore`)."""
    return service_endpoints.database_url


@pytest.fixture(scope="session")
def kafka_bootstrap(service_endpoints: ServiceEndpoints) -> str:
    """The services' Kafka bootstrap address."""
    return service_endpoints.kafka_bootstrap
