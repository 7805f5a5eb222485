"""Typed settings for the local services (environment prefix `RTSCORE_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalServicesSettings(BaseSettings):
    """How `rtscore services` finds, starts and checks Postgres, Kafka and Redis."""

    model_config = SettingsConfigDict(env_prefix="RTSCORE_", extra="ignore")

    database_url: str | None = None
    """An existing Postgres to use instead of starting one (checked to answer)."""

    kafka_bootstrap: str | None = None
    """An existing Kafka bootstrap address to use instead of starting a broker (checked to answer)."""

    redis_url: str | None = None
    """An existing Redis (`redis://host:port/db`) to use instead of starting one (checked to answer)."""

    redis_maxmemory: str = "256mb"
    """Memory cap of the local Redis; keys with the nearest expiry go first when it is reached."""

    services_root: Path | None = None
    """Folder whose `.rtscore/` holds the services' data and state; default: the repository."""

    pg_bin_dir: Path | None = None
    """Folder holding `initdb` and `pg_ctl`; default: PATH, then /usr/lib/postgresql/<newest>/bin."""

    service_user: str | None = None
    """Unprivileged account Postgres runs as when started by root; default `postgres`, else `nobody`."""

    kafka_heap: str = "512m"
    """Maximum JVM heap of the local Kafka broker (-Xmx)."""

    start_timeout_s: float = Field(default=90.0, gt=0)
    """How long a started service may take to answer before `up` gives up."""

    stop_timeout_s: float = Field(default=20.0, gt=0)
    """How long a service may take to exit after SIGTERM before it is killed."""

    fetch_timeout_s: float = Field(default=900.0, gt=0)
    """How long fetching Kafka's jars from Maven (or installing redis-server with apt) may take."""
