"""Typed settings of a scorer pool client: attempts, picking, ejection, hedging, batching, channels."""

from __future__ import annotations

from dataclasses import dataclass

from rtscore.errors import InvalidArgument

# Micro-batching must never add more than this to a call's latency.
MAX_BATCH_WAIT_S = 0.0002


@dataclass(frozen=True)
class PoolSettings:
    """How a `ScorerPool` picks, retries, ejects, hedges and batches; every field has a safe default."""

    default_timeout_s: float = 1.0
    """Deadline of a call that names none."""
    max_attempts: int = 3
    """Failed attempts (UNAVAILABLE, a reset, a refused connection, one past `attempt_timeout_s`) after
    which a call fails; each attempt goes to another endpoint while there is one."""
    attempt_timeout_s: float | None = None
    """Deadline of each attempt (gRPC's perAttemptRecvTimeout): one that passes it is given up and the
    call goes to another endpoint while its own deadline leaves time, so a stall that outlasts one
    attempt costs the call that wait, not the call. None: an attempt may take the call's whole deadline.
    With `hedge`, a call's first attempt and its hedge have the call's deadline: the hedge is the retry."""
    busy_backoff_s: float = 0.005
    """A busy scorer's refusal (RESOURCE_EXHAUSTED, or CANCELLED from its pending-call bound) is not a
    failure: the call goes to another ready scorer, and once every ready one was tried, to one of them
    again after this wait, doubled after each such wait and jittered, while the deadline leaves time.
    A busy scorer's queue drains within milliseconds, so the call is answered rather than failed."""
    busy_retry_share: float = 0.2
    """Busy scorers asked again, as a share of calls (a token bucket): a stall's burst of refusals is
    ridden out, while a lasting overload is not multiplied by the retries."""
    ewma_weight: float = 0.1
    """Weight of each new latency in an endpoint's average (of log-latencies): ~10 calls of memory."""
    ewma_decay_s: float = 1.0
    """While an endpoint gets no calls its cost decays toward zero with this time constant, so one that
    was slow is tried again."""
    initial_rtt_s: float = 0.001
    """Latency assumed for an endpoint that has answered nothing yet."""
    cost_tolerance: float = 2.0
    """Of two endpoints, the cheaper is preferred only when the other costs this many times more."""
    failure_penalty_s: float = 0.1
    """Latency charged for a failed call, so an endpoint that fails fast never looks fast."""
    eject_after_failures: int = 3
    """Consecutive failed calls after which an endpoint is ejected."""
    eject_base_s: float = 0.5
    """First ejection's length; each further one doubles it, up to `eject_max_s`."""
    eject_max_s: float = 30.0
    """Longest ejection."""
    max_ejected_share: float = 0.5
    """Share of a model's ready endpoints that may be ejected at once (at least one stays)."""
    hedge: bool = False
    """Send a second copy of a slow call to another endpoint; the first answer wins."""
    hedge_delay_s: float | None = None
    """Wait before hedging; None: the pool's running `hedge_quantile` of latency."""
    hedge_quantile: float = 0.95
    """Which running quantile of latency a call may take before it is hedged (with no set delay)."""
    hedge_max_share: float = 0.05
    """Hedges allowed, as a share of calls (a token bucket)."""
    batch: bool = False
    """Join single-row calls for the same model that arrive together into one frame."""
    batch_wait_s: float = MAX_BATCH_WAIT_S
    """Longest a single-row call waits for others to join its batch (at most 200 µs)."""
    batch_max_rows: int = 32
    """Rows of one batched frame."""
    keepalive_time_s: float = 20.0
    """HTTP/2 keepalive ping interval while calls (health watches) are open."""
    keepalive_timeout_s: float = 10.0
    """A ping unanswered this long closes the connection."""
    reconnect_initial_s: float = 0.1
    """First reconnect backoff of a channel (and of a health watch)."""
    reconnect_max_s: float = 2.0
    """Longest reconnect backoff."""
    max_message_bytes: int = 16 * 1024 * 1024
    """Largest request or response."""
    connections_per_endpoint: int = 1
    """Connections opened to each scorer address, each its own endpoint to the picker (health watched
    and cost measured on each). A scorer of N worker processes on one SO_REUSEPORT port is reached
    only through the worker that each connection drew, so one connection uses one of its workers: give
    it about 4 x N (the kernel picks a connection's worker by a hash, so fewer can leave one idle)."""
    max_models: int = 256
    """Distinct model names the pool follows (one health watch per endpoint each); more are refused."""

    def __post_init__(self) -> None:
        positive = {
            "default_timeout_s": self.default_timeout_s, "ewma_decay_s": self.ewma_decay_s,
            "initial_rtt_s": self.initial_rtt_s, "failure_penalty_s": self.failure_penalty_s,
            "eject_base_s": self.eject_base_s, "eject_max_s": self.eject_max_s,
            "keepalive_time_s": self.keepalive_time_s, "keepalive_timeout_s": self.keepalive_timeout_s,
            "reconnect_initial_s": self.reconnect_initial_s, "reconnect_max_s": self.reconnect_max_s,
            "busy_backoff_s": self.busy_backoff_s,
        }  # fmt: skip
        for name, value in positive.items():
            if not value > 0:
                raise InvalidArgument(f"{name} must be positive, got {value}")
        if not 0 < self.ewma_weight <= 1:
            raise InvalidArgument(f"ewma_weight must be within (0, 1], got {self.ewma_weight}")
        if not self.cost_tolerance >= 1:
            raise InvalidArgument(f"cost_tolerance must be at least 1, got {self.cost_tolerance}")
        counts = (self.max_attempts, self.eject_after_failures, self.batch_max_rows, self.max_models)
        if min(*counts, self.connections_per_endpoint) < 1:
            raise InvalidArgument(
                "max_attempts, eject_after_failures, batch_max_rows, max_models and"
                " connections_per_endpoint must be at least 1"
            )
        shares = (self.max_ejected_share, self.hedge_max_share, self.busy_retry_share)
        if not all(0 <= share <= 1 for share in shares):
            raise InvalidArgument(
                "max_ejected_share, hedge_max_share and busy_retry_share must be within [0, 1]"
            )
        if not 0.5 <= self.hedge_quantile < 1:
            raise InvalidArgument(f"hedge_quantile must be within [0.5, 1), got {self.hedge_quantile}")
        if self.hedge_delay_s is not None and not self.hedge_delay_s > 0:
            raise InvalidArgument(f"hedge_delay_s must be positive, got {self.hedge_delay_s}")
        if self.attempt_timeout_s is not None and not self.attempt_timeout_s > 0:
            raise InvalidArgument(f"attempt_timeout_s must be positive, got {self.attempt_timeout_s}")
        if not 0 < self.batch_wait_s <= MAX_BATCH_WAIT_S:
            raise InvalidArgument(
                f"batch_wait_s must be within (0, {MAX_BATCH_WAIT_S}], got {self.batch_wait_s}"
            )

    def channel_options(self) -> list[tuple[str, int]]:
        """gRPC channel options of a long-lived connection to one scorer."""
        return [
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1e3)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_s * 1e3)),
            # Health watches keep a call open, so pings never go out on an idle connection (which
            # servers punish with GOAWAY too_many_pings); the default 2 pings without data stays.
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.initial_reconnect_backoff_ms", int(self.reconnect_initial_s * 1e3)),
            ("grpc.min_reconnect_backoff_ms", int(self.reconnect_initial_s * 1e3)),
            ("grpc.max_reconnect_backoff_ms", int(self.reconnect_max_s * 1e3)),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            # The pool retries on another endpoint itself; C-core's transparent retry would hide which.
            ("grpc.enable_retries", 0),
            # One connection per endpoint object: two pools in a process do not share subchannels.
            ("grpc.use_local_subchannel_pool", 1),
        ]
