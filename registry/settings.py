"""Typed settings of the registry service (env prefix RTSCORE_REGISTRY_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_store_dir() -> Path:
    return Path.home() / ".local" / "share" / "rtscore" / "bundles"


class EvaluationThresholds(BaseSettings):
    """What a shadow evaluation must show to pass the promotion gate."""

    model_config = SettingsConfigDict(env_prefix="RTSCORE_REGISTRY_EVAL_")

    min_sample_size: int = Field(default=1000, ge=1)
    """Transactions scored by both models, at least."""
    min_agreement: float = Field(default=0.99, ge=0, le=1)
    """Share of same decisions at the threshold, at least."""
    max_score_distance: float = Field(default=0.1, ge=0)
    """Distance between the score distributions, at most."""


class RegistrySettings(BaseSettings):
    """Settings of `rtscore registry serve`."""

    model_config = SettingsConfigDict(env_prefix="RTSCORE_REGISTRY_", populate_by_name=True)

    database_url: str = Field(
        default="", validation_alias=AliasChoices("RTSCORE_REGISTRY_DATABASE_URL", "RTSCORE_DATABASE_URL")
    )
    """Postgres DSN; RTSCORE_DATABASE_URL works too."""
    host: str = "127.0.0.1"
    """Interface the gRPC port binds."""
    port: int = Field(default=50071, ge=0, le=65535)
    """gRPC port; 0 picks a free one."""
    store: Literal["local", "postgres"] = "local"
    """Where bundle bytes live: a local directory or Postgres."""
    store_dir: Path = Field(default_factory=_default_store_dir)
    """Directory of the local store (content-addressed by sha256)."""
    chunk_size: int = Field(default=1 << 20, ge=1)
    """Bytes per chunk streamed down and stored in Postgres."""
    max_bundle_bytes: int = Field(default=4 << 30, ge=1)
    """Largest bundle accepted."""
    pool_size: int = Field(default=10, ge=1)
    """Postgres connections per registry process."""
    grace_seconds: float = Field(default=5.0, ge=0)
    """How long in-flight calls may finish on shutdown."""
    tls_cert: Path | None = None
    """PEM certificate chain; with tls_key, the port speaks TLS."""
    tls_key: Path | None = None
    """PEM private key for tls_cert."""
    tls_client_ca: Path | None = None
    """PEM CA bundle; when set, only clients presenting a certificate it signed get in (mutual TLS)."""
    metrics_port: int | None = None
    """Prometheus metrics port; unset means no metrics endpoint."""
    watch_poll_seconds: float = 5.0
    """Watch streams also re-read state this often, in case a notification was lost."""
    eval: EvaluationThresholds = Field(default_factory=EvaluationThresholds)
    """Thresholds of the promotion gate."""
