"""Typed settings of the scorer service; environment variables use the prefix RTSCORE_SCORER_."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ScorerSettings(BaseSettings):
    """How one scorer process listens, bounds its work, checks its models and drains."""

    model_config = SettingsConfigDict(env_prefix="RTSCORE_SCORER_", extra="forbid")

    host: str = "127.0.0.1"
    """Address to bind the gRPC server to."""
    port: int = Field(default=50051, ge=0, le=65535)
    """gRPC port; 0 picks a free port, which the server reports."""
    workers: int = Field(default=1, ge=1, le=64)
    """Processes sharing the port through SO_REUSEPORT."""
    scoring_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Threads that run transforms; the forest kernel releases the GIL, so one per core."""
    inline_rows: int = Field(default=0, ge=0)
    """Frames of at most this many rows are always scored on the event loop when no other call is in
    flight, saving the thread hand-off (~0.35 ms on a 2-core VM). Only for models whose transform is
    short: an inline transform holds the loop while it runs."""
    inline_budget_ms: float = Field(default=1.0, ge=0)
    """When no other call is in flight, a frame whose expected transform time (its rows times the model's
    measured time per row) is at most this many ms is scored on the event loop; 0 turns this off. A slow
    model thus never holds the loop, whatever its frames' size."""
    max_in_flight: int = Field(default=256, ge=1)
    """Calls in progress past which new calls get RESOURCE_EXHAUSTED at once."""
    shed_by_deadline: bool = True
    """Refuse at once (RESOURCE_EXHAUSTED) a call whose deadline, when it is read, leaves less than its
    expected transform time, the calls ahead of it and `deadline_margin_ms`: under overload calls wait
    in gRPC's queue, and one that can only finish late is refused instead of scored for nobody."""
    deadline_margin_ms: float = Field(default=1.0, ge=0)
    """Time kept for sending the reply when judging whether a call can finish before its deadline."""
    max_pending_calls: int = Field(default=32, ge=0)
    """Calls of one method that gRPC's core has received but the event loop has not taken yet, past
    which gRPC's core refuses new ones itself (the caller sees CANCELLED at once), before any Python
    runs for them: under overload a refusal in Python costs about as much loop time as an answer, so
    only a refusal there keeps the loop's time for the calls it accepts. The loop takes one call per
    turn, so a burst of simultaneous calls waits here too: a lower bound (8, soft limit 2) kept the
    accepted calls' p99 under 10 ms at twice the capacity on a 2-vCPU host, but also refuses some calls
    of eight callers at once; the default lets such bursts in. 0 turns the bound off."""
    pending_calls_soft_limit: int = Field(default=16, ge=0)
    """From this many pending calls on, gRPC's core refuses a new call with a probability that grows
    linearly to 1 at `max_pending_calls` (random early detection), so short bursts still get in. A
    loop that stalls for a few ms (a VM's vCPU taken away) meets a burst too: with two workers at
    1,500/s each on a 2-vCPU host, a soft limit of 8 refused calls in 6 of 7 20-s runs (132 calls in
    all), 16 in 2 of 7 (3 calls), with the same accepted p99 at twice the capacity."""
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request or response message accepted."""
    canary_interval_s: float = Field(default=10.0, gt=0)
    """Seconds between canary runs of every hosted model."""
    canary_budget_ms: float = Field(default=250.0, gt=0)
    """A canary slower than this twice in a row turns its model NOT_SERVING (a wrong answer does at once)."""
    drain_grace_s: float = Field(default=10.0, ge=0)
    """On SIGTERM, how long in-flight calls get to finish."""
    metrics_host: str = "127.0.0.1"
    """Address of the Prometheus endpoint."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Prometheus endpoint port (worker i uses port + i); None turns the endpoint off."""
    log_level: str = "INFO"
    """Level of the process's JSON logs."""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The asyncio event loop: uvloop runs the loop's own work (tasks, callbacks, wake-ups) in C; on the
    seed forest it cut the server's CPU per call by ~15% and raised one caller's rate by 14-26%."""
    cpu_latency_us: int | None = Field(default=None, ge=0)
    """While serving, hold the machine's idle CPUs to states that wake within this many microseconds (a
    PM QoS request on /dev/cpu_dma_latency, see rtscore.cpu_latency); 0 keeps them polling, so a call
    never waits for a sleeping CPU, at the price of idle CPUs spinning. None: the machine's own idle."""
    tls_cert: Path | None = None
    """PEM certificate chain; with tls_key, the gRPC port speaks TLS (as the registry's settings)."""
    tls_key: Path | None = None
    """PEM private key of tls_cert."""
    tls_client_ca: Path | None = None
    """PEM CA bundle; when set, only clients presenting a certificate it signed get in (mutual TLS)."""
    operator_token_file: Path | None = None
    """File holding the operator token that LoadModel/UnloadModel callers must present as
    `authorization: Bearer <token>`. Without it, a registry-following scorer refuses them all."""
    load_dirs: list[Path] = Field(default_factory=list)
    """Standalone mode: directories LoadModel may load bundles from (empty: any path the process reads)."""
    registry: str | None = None
    """host:port of the registry to follow; None serves only --model bundles and LoadModel calls."""
    registry_token_file: Path | None = None
    """File holding the bearer token for the registry (a `service` role token)."""
    registry_ca: Path | None = None
    """PEM CA of the registry's TLS certificate; set it when the registry speaks TLS."""
    registry_cert: Path | None = None
    """PEM client certificate for a registry that wants mutual TLS (with registry_key)."""
    registry_key: Path | None = None
    """PEM private key of registry_cert."""
    pool: str = "default"
    """Registry pool whose deployments this scorer hosts."""
    environment: str = "production"
    """Registry environment whose deployments this scorer hosts."""
    advertise: str | None = None
    """host:port announced to the registry's membership; default: host and the bound port."""
    heartbeat_ttl_s: float = Field(default=3.0, gt=0, le=3600)
    """Membership lasts this long after each heartbeat; heartbeats go every third of it."""
    leave_grace_s: float = Field(default=0.5, ge=0)
    """On SIGTERM, time between leaving the membership and closing the port, so clients move away."""
    bundle_cache_dir: Path | None = None
    """Bundles downloaded from the registry, by sha256, shared by the host's scorers; default
    `$RTSCORE_CACHE_DIR/bundles` or `~/.cache/rtscore/bundles`."""
    registry_backoff_max_s: float = Field(default=5.0, gt=0)
    """Longest wait between retries when the registry is unreachable (jittered, exponential)."""

    @model_validator(mode="after")
    def _pending_limits_in_order(self) -> ScorerSettings:
        if not self.max_pending_calls or self.pending_calls_soft_limit <= self.max_pending_calls:
            return self
        if "pending_calls_soft_limit" in self.model_fields_set:
            raise ValueError(
                f"pending_calls_soft_limit ({self.pending_calls_soft_limit}) must not exceed "
                f"max_pending_calls ({self.max_pending_calls})"
            )
        self.pending_calls_soft_limit = self.max_pending_calls  # the default follows a lower bound
        return self
