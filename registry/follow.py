"""Following a registry from another service: bundles by sha256 in a shared cache, and desired state.

The client side that scorers and shadow workers share:

- `RegistryConnection(address, token, ca=..., cert=..., key=...)`: where the registry is and how to
  authenticate; `.channel()` opens a `grpc.aio` channel, `.metadata` is the bearer token.
- `BundleCache(root)`: bundle files named by their sha256 under `root`, shared by every process of a host.
  `await cache.fetch(stub, metadata, name, version, sha256)` returns the local path, downloading the bundle
  only if no process has yet; bytes are streamed to a temporary file, checked against the *expected*
  sha256 (the one the deployment names, not what the sender announces) and renamed into place, so a
  reader never sees a partial or wrong file. Processes fetching the same bundle take turns on a file lock
  and the later ones find it done. A mismatch raises `BundleRefused`; a registry that cannot be reached
  raises `rtscore.errors.Unavailable` (worth retrying, `is_transient`).
- `DeploymentFollower(connection, environment, pool, on_state)`: `await follower.run()` follows
  `WatchDeployments` until cancelled, awaiting `on_state(DesiredState)` for every new state. It resumes
  from the last revision `on_state` handled, so after a disconnect it gets the current state only if it
  changed; when `on_state` raises, the state counts as not handled and comes again after a backoff.
  Disconnects and refusals are retried with exponential backoff and full jitter (`Backoff`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import random
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from rtscore.errors import NotFound, RtscoreError, Unavailable
from rtscore.tls import channel_credentials, wants_tls

log = logging.getLogger(__name__)

# Channel options of a long-lived follower: find a dead connection within about a minute.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 16 << 20),
]


# Watch refusals that retrying alone will not fix.
NEEDS_OPERATOR = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    }
)


class BundleRefused(RtscoreError):
    """A bundle's bytes do not match the sha256 its version was registered with."""

    code = grpc.StatusCode.DATA_LOSS


def is_transient(err: BaseException) -> bool:
    """Whether retrying the same thing later may succeed (the registry was unreachable or busy)."""
    return isinstance(err, Unavailable)


class Backoff:
    """Exponential backoff with full jitter: each delay is uniform in [0, min(cap, initial * 2**n)]."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next retry; each call doubles the window up to `cap`."""
        window = min(self.cap, self.initial * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return self._rng.uniform(0, window)

    def reset(self) -> None:
        """Start again from `initial` (after a success)."""
        self._attempt = 0

    async def sleep(self) -> float:
        """Sleep for the next delay; returns it."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


@dataclass(frozen=True)
class RegistryConnection:
    """Where the registry listens and the credentials to call it with."""

    address: str
    token: str = ""
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the bearer token (empty without one)."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel(self) -> grpc.aio.Channel:
        """A new aio channel to the registry (TLS when a CA or client certificate is set)."""
        if wants_tls(self.ca, self.cert, self.key):
            creds = channel_credentials(self.ca, self.cert, self.key)
            return grpc.aio.secure_channel(self.address, creds, options=CHANNEL_OPTIONS)
        return grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)


def _call_error(what: str, err: grpc.aio.AioRpcError) -> RtscoreError:
    code = err.code()
    message = f"{what}: {code.name}: {err.details()}"
    if code == grpc.StatusCode.DATA_LOSS:
        return BundleRefused(message)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED):
        return Unavailable(message)
    error = RtscoreError(message)
    error.code = code
    return error


class BundleCache:
    """Bundle files by sha256 under one folder (`<root>/ab/abcd….zip`), safe for concurrent processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._local: dict[str, asyncio.Lock] = {}

    def path_of(self, sha256: str) -> Path:
        """Where the bundle with this sha256 lives once cached."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise BundleRefused(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.zip"

    def has(self, sha256: str) -> bool:
        """Whether the bundle is cached (only complete, verified files ever appear under their name)."""
        return self.path_of(sha256).is_file()

    async def fetch(
        self,
        stub: Any,
        metadata: Any,
        name: str,
        version: int,
        sha256: str,
        *,
        call_timeout: float = 600.0,
    ) -> Path:
        """The local path of name@version's bundle, downloading and verifying it unless already cached.

        `stub` is a `RegistryStub` on an aio channel; `metadata` carries the token."""
        target = self.path_of(sha256)
        if target.is_file():
            return target
        lock = self._local.setdefault(sha256, asyncio.Lock())
        async with lock:  # one download per process; the file lock below orders processes
            if target.is_file():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = await asyncio.to_thread(_lock_file, target.with_suffix(".lock"))
            try:
                if not target.is_file():
                    await self._download(stub, metadata, name, version, sha256, target, call_timeout)
            finally:
                os.close(fd)  # closing the descriptor releases the lock
        return target

    async def _download(
        self, stub: Any, metadata: Any, name: str, version: int, sha256: str, target: Path, seconds: float
    ) -> None:
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{sha256[:12]}-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                request = pb.VersionRef(name=name, version=version)
                try:
                    async for chunk in stub.DownloadBundle(request, metadata=metadata, timeout=seconds):
                        digest.update(chunk.data)
                        file.write(chunk.data)
                except grpc.aio.AioRpcError as err:
                    raise _call_error(f"download of {name}@{version}", err) from None
                file.flush()
                await asyncio.to_thread(os.fsync, file.fileno())
            if digest.hexdigest() != sha256:
                raise BundleRefused(
                    f"bundle of {name}@{version} does not match its sha256: expected {sha256},"
                    f" the bytes received hash to {digest.hexdigest()}"
                )
            os.replace(tmp, target)
            log.info("bundle cached", extra={"model": f"{name}@{version}", "sha256": sha256})
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)


def _lock_file(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


StateHandler = Callable[[pb.DesiredState], Awaitable[None]]


class DeploymentFollower:
    """Follows one environment/pool's desired deployments, resuming from the last handled revision."""

    def __init__(
        self,
        connection: RegistryConnection,
        environment: str,
        pool: str,
        on_state: StateHandler,
        *,
        backoff: Backoff | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.connection = connection
        self.environment = environment
        self.pool = pool
        self.on_state = on_state
        self.backoff = backoff or Backoff()
        self.revision = 0
        self.states_handled = 0
        self.connected = asyncio.Event()
        self._channel = channel
        self._failing = False

    async def run(self) -> None:
        """Follow until cancelled; never raises for a lost or refused stream, it retries."""
        own = self._channel is None
        channel = self._channel or self.connection.channel()
        stub = pb_grpc.RegistryStub(channel)
        try:
            while True:
                await self._follow_once(stub)
                delay = await self.backoff.sleep()
                log.debug("registry watch retrying", extra={"delay_s": round(delay, 3)})
        finally:
            if own:
                with contextlib.suppress(Exception):
                    await channel.close(grace=None)

    async def _follow_once(self, stub: pb_grpc.RegistryStub) -> None:
        request = pb.WatchDeploymentsRequest(
            environment=self.environment, pool=self.pool, since_revision=self.revision
        )
        call = stub.WatchDeployments(request, metadata=self.connection.metadata)
        try:
            async for state in call:
                self.connected.set()
                if self._failing:
                    log.info("registry watch resumed", extra={"revision": self.revision})
                    self._failing = False
                try:
                    await self.on_state(state)
                except RtscoreError as err:
                    log.warning(
                        "desired state not applied; retrying",
                        extra={"revision": state.revision, "error": str(err)},
                    )
                    return
                except Exception:  # a bug in the handler must not end the following; it is logged
                    log.exception("desired state handler failed", extra={"revision": state.revision})
                    return
                self.revision = state.revision
                self.states_handled += 1
                self.backoff.reset()
        except grpc.aio.AioRpcError as err:
            # one warning per outage, the retries while it lasts are debug detail; a refusal that
            # needs the operator (bad token, unknown environment) is an error every time
            if err.code() in NEEDS_OPERATOR:
                level = logging.ERROR
            else:
                level = logging.DEBUG if self._failing else logging.WARNING
            detail = {"code": err.code().name, "error": err.details(), "revision": self.revision}
            log.log(level, "registry watch lost", extra=detail)
            self._failing = True
        finally:
            self.connected.clear()
            call.cancel()
