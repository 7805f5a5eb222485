"""Typed settings of the shadow workers (env prefix RTSCORE_SHADOW_)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_bundle_dir() -> Path:
    return Path.home() / ".cache" / "rtscore" / "shadow-bundles"


class ShadowSettings(BaseSettings):
    """Settings of `rtscore shadow run`."""

    model_config = SettingsConfigDict(env_prefix="RTSCORE_SHADOW_", populate_by_name=True)

    database_url: str = Field(
        default="", validation_alias=AliasChoices("RTSCORE_SHADOW_DATABASE_URL", "RTSCORE_DATABASE_URL")
    )
    """Postgres DSN of the score rows and offsets; RTSCORE_DATABASE_URL works too."""
    kafka_bootstrap: str = Field(
        default="", validation_alias=AliasChoices("RTSCORE_SHADOW_KAFKA_BOOTSTRAP", "RTSCORE_KAFKA_BOOTSTRAP")
    )
    """Kafka bootstrap servers; RTSCORE_KAFKA_BOOTSTRAP works too."""
    registry: str = Field(
        default="127.0.0.1:50071",
        validation_alias=AliasChoices("RTSCORE_SHADOW_REGISTRY", "RTSCORE_REGISTRY"),
    )
    """Registry address whose shadow deployments the workers score with."""
    token: str = Field(default="", validation_alias=AliasChoices("RTSCORE_SHADOW_TOKEN", "RTSCORE_TOKEN"))
    """Bearer token for the registry (a `service` role)."""
    environment: str = "production"
    """Environment whose `shadow` deployments are scored."""
    pool: str = ""
    """Pool of those deployments; empty means every pool of the environment."""
    topic: str = "rtscore.shadow"
    """Topic of the extractors' ShadowRecords."""
    group: str = "rtscore-shadow"
    """Consumer group; workers of one group share the topic's partitions."""
    dead_letter_topic: str = ""
    """Where poison records go; empty means `<topic>.dlq`."""
    instance_id: str = ""
    """Static group membership (KIP-345): a restarted worker with the same id takes its partitions back
    at once instead of waiting for the session timeout."""
    session_timeout_ms: int = Field(default=10_000, ge=1)
    """How long the group waits for a silent worker before moving its partitions."""
    batch_size: int = Field(default=2_000, ge=1)
    """Records per batch, at most."""
    batch_timeout_s: float = Field(default=0.2, gt=0)
    """How long a batch may wait to fill."""
    score_threads: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=1)
    """Models scored side by side per batch (the forest kernel runs without the GIL)."""
    threshold: float = Field(default=0.5, ge=0, le=1)
    """Score at or above which a shadow model's decision is positive (fraud)."""
    retry_initial_s: float = Field(default=0.1, gt=0)
    """First wait before retrying a batch whose database or broker was away."""
    retry_max_s: float = Field(default=5.0, gt=0)
    """Longest wait between retries."""
    bundle_dir: Path = Field(default_factory=_default_bundle_dir)
    """Bundles downloaded from the registry, by sha256."""
    metrics_port: int | None = None
    """Prometheus metrics port; unset means no metrics endpoint."""

    @property
    def dead_letters(self) -> str:
        """The dead-letter topic in use."""
        return self.dead_letter_topic or f"{self.topic}.dlq"
