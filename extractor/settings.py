"""Typed settings of the extractor service (environment prefix `RTSCORE_EXTRACTOR_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExtractorSettings(BaseSettings):
    """How one extractor process listens, extracts, scores, decides and copies to the shadow tier."""

    model_config = SettingsConfigDict(env_prefix="RTSCORE_EXTRACTOR_", extra="ignore")

    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = Field(default=50071, ge=0, le=65535)
    """gRPC port; 0 picks a free one (printed on the first line)."""
    workers: int = Field(default=1, ge=1, le=64)
    """Extractor processes sharing the port (SO_REUSEPORT, `rtscore.workers`): one event loop each, so
    a host's cores all extract. More than one needs `velocity = redis`, the state they share."""
    spec: Path | None = None
    """Feature spec (TOML); None: the project's default spec."""
    model: str = "fraud:champion"
    """The model every transaction is scored with: name, name@version or a role alias."""
    scorers: list[str] = Field(default_factory=list)
    """Static scorer endpoints (host:port); else `registry` and `pool` name them."""
    registry: str | None = None
    """Registry address whose membership watch lists the pool's scorers."""
    registry_token_file: Path | None = None
    """File holding the bearer token for the registry (a `service` role token); None: RTSCORE_TOKEN."""
    registry_ca: Path | None = None
    """PEM CA of the registry's TLS certificate; set it when the registry speaks TLS."""
    registry_cert: Path | None = None
    """PEM client certificate for a registry that wants mutual TLS (with registry_key)."""
    registry_key: Path | None = None
    """PEM private key of registry_cert."""
    scorer_ca: Path | None = None
    """PEM CA of the scorers' TLS certificates; any of scorer_ca/cert/key makes scorer calls speak TLS."""
    scorer_cert: Path | None = None
    """PEM client certificate for scorers that want mutual TLS (with scorer_key)."""
    scorer_key: Path | None = None
    """PEM private key of scorer_cert."""
    scorer_connections: int = Field(default=1, ge=1, le=64)
    """Connections to each scorer address: one reaches one worker of a scorer run with --workers N,
    so give such scorers about 4 x N (`PoolSettings.connections_per_endpoint`)."""
    pool: str = "default"
    """Scorer pool name in the registry."""
    environment: str = "production"
    """Environment of the pool, also written into shadow records."""
    review_at: float = Field(default=0.5, ge=0, le=1)
    """Scores at or above this are reviewed."""
    decline_at: float = Field(default=0.8, ge=0, le=1)
    """Scores at or above this are declined."""
    score_timeout_s: float = Field(default=0.05, gt=0)
    """Deadline of each attempt at the scorer call: a later attempt is given up and the call goes to
    another scorer while the caller's deadline leaves time (less a tenth, kept for the answer), so a
    stall of the host or a scorer costs the call that wait, not the call."""
    hedge: bool = False
    """Send a scorer call that is slower than hedge_delay_s to a second scorer too; the first answer
    wins (at most 5% of calls are hedged). Cuts the tail a stalled scorer makes, for a little load."""
    hedge_delay_s: float | None = Field(default=None, gt=0)
    """How long a scorer call runs before it is hedged; None: the pool's running p95 of latency."""
    call_timeout_s: float = Field(default=0.2, gt=0)
    """Deadline of an Evaluate whose caller set none."""
    wait_ready_s: float = Field(default=30.0, gt=0)
    """How long `serve` waits at start for a scorer hosting the model."""
    cpu_latency_us: int | None = Field(default=None, ge=0)
    """While serving, hold the machine's idle CPUs to states that wake within this many microseconds
    (rtscore.cpu_latency; 0 keeps them polling). None: the machine's own idle."""
    dense_frames: bool = True
    """Send features as Frame.dense (one block of doubles: one pack here, one np.frombuffer in the scorer)
    rather than one column per feature."""
    velocity: Literal["memory", "redis"] = "memory"
    """Where velocity state lives: this process, or Redis shared by all extractors."""
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RTSCORE_EXTRACTOR_REDIS_URL", "RTSCORE_REDIS_URL")
    )
    """Redis for `velocity = redis` (RTSCORE_REDIS_URL, as `rtscore services env` prints it)."""
    velocity_timeout_s: float = Field(default=0.02, gt=0)
    """A Redis call slower than this falls back to local velocity."""
    velocity_retry_s: float = Field(default=1.0, gt=0)
    """After a Redis failure, calls use local velocity this long before Redis is tried again."""
    memory_max_entities: int = Field(default=200_000, gt=0)
    """Entities the in-process velocity store keeps (least recently seen evicted)."""
    shadow_topic: str | None = None
    """Kafka topic of the shadow copies; None: no copies."""
    shadow_fraction: float = Field(default=0.0, ge=0, le=1)
    """Share of transactions copied."""
    shadow_key: str = "transaction"
    """What the sample is keyed by: `transaction` (its id) or an entity field such as `card_token`."""
    kafka_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RTSCORE_EXTRACTOR_KAFKA_BOOTSTRAP", "RTSCORE_KAFKA_BOOTSTRAP"),
    )
    """Kafka for the shadow copies (RTSCORE_KAFKA_BOOTSTRAP)."""
    shadow_queue_max: int = Field(default=20_000, gt=0)
    """Copies queued locally at most; beyond, copies are dropped and counted."""
    shadow_message_timeout_ms: int = Field(default=30_000, gt=0)
    """A copy Kafka has not acknowledged within this is dropped and counted."""
    metrics_host: str = "127.0.0.1"
    """Address of the Prometheus endpoint."""
    metrics_port: int | None = None
    """Prometheus endpoint port; None: no endpoint."""
    drain_grace_s: float = Field(default=5.0, ge=0)
    """Grace for in-flight calls on SIGTERM."""

    @model_validator(mode="after")
    def _workers_share_velocity(self) -> ExtractorSettings:
        if self.workers > 1 and self.velocity != "redis":
            raise ValueError(
                f"{self.workers} workers need velocity = redis: in-process velocity would count only "
                "the transactions each worker saw"
            )
        return self
