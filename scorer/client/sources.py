"""Where a pool's endpoints come from: a fixed list, or the registry's live membership of a pool."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import grpc

from protos.rtscore.v1 import registry_pb2 as pb
from protos.rtscore.v1 import registry_pb2_grpc as pb_grpc
from rtscore.errors import InvalidArgument

log = logging.getLogger(__name__)


class EndpointSource(Protocol):
    """Yields the whole endpoint list each time it changes."""

    description: str
    problem: str
    """Why the source gives no current list (a refused token, an unreachable registry), else ''."""
    refused: bool
    """Whether that is a refusal of the source's credentials, which waiting does not mend."""

    def updates(self) -> AsyncIterator[list[str]]:
        """The current list, then every later one."""
        ...


def check_address(address: str) -> str:
    """`host:port` with a numeric port, or InvalidArgument."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"scorer endpoint must be HOST:PORT, got {address!r}")
    return address.strip()


class StaticEndpoints:
    """A fixed list of endpoints."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = [check_address(a) for a in addresses]
        if not self.addresses:
            raise InvalidArgument("a static pool needs at least one HOST:PORT")
        self.description = ",".join(self.addresses)
        self.problem = ""
        self.refused = False

    async def updates(self) -> AsyncIterator[list[str]]:
        """The list once; it never changes."""
        yield list(self.addresses)


def static_endpoints(addresses: Sequence[str] | str) -> StaticEndpoints:
    """Endpoints from a list, or from a comma-separated `H:P,H:P` string."""
    if isinstance(addresses, str):
        addresses = [a for a in addresses.split(",") if a.strip()]
    return StaticEndpoints(addresses)


class RegistryEndpoints:
    """The endpoints heartbeating into one environment/pool, followed through `WatchMembers`."""

    def __init__(
        self,
        registry: str,
        pool: str,
        environment: str,
        token: str | None,
        credentials: grpc.ChannelCredentials | None,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.registry = check_address(registry)
        self.pool = pool
        self.environment = environment
        token = token if token is not None else os.environ.get("RTSCORE_TOKEN", "")
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.credentials = credentials
        self.backoff_max_s = backoff_max_s
        self.description = f"registry {self.registry} {environment}/{pool}"
        self.problem = ""
        self.refused = False

    async def updates(self) -> AsyncIterator[list[str]]:
        """Membership as the registry pushes it; while the registry is away the last list stands."""
        options = [("grpc.keepalive_time_ms", 20_000), ("grpc.max_reconnect_backoff_ms", 2_000)]
        if self.credentials is None:
            channel = grpc.aio.insecure_channel(self.registry, options=options)
        else:
            channel = grpc.aio.secure_channel(self.registry, self.credentials, options=options)
        stub = pb_grpc.RegistryStub(channel)
        request = pb.WatchMembersRequest(environment=self.environment, pool=self.pool)
        backoff = 0.05
        try:
            while True:
                try:
                    async for membership in stub.WatchMembers(request, metadata=self.metadata):
                        backoff = 0.05
                        self.problem, self.refused = "", False
                        yield list(membership.endpoints)
                except grpc.aio.AioRpcError as err:
                    code = err.code()
                    self.refused = code in (
                        grpc.StatusCode.PERMISSION_DENIED,
                        grpc.StatusCode.UNAUTHENTICATED,
                    )
                    if self.refused:
                        self.problem = f"the registry refused WatchMembers: {code.name}: {err.details()}"
                        log.error("registry refused WatchMembers", extra={"detail": err.details()})
                    else:
                        self.problem = f"the registry's membership watch failed: {code.name}: {err.details()}"
                        log.warning("membership watch lost; retrying", extra={"code": code.name})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
        finally:
            await channel.close()


def registry_endpoints(
    registry_address: str,
    pool: str = "default",
    environment: str = "production",
    token: str | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> RegistryEndpoints:
    """Endpoints from the registry's membership of `environment`/`pool` (token: RTSCORE_TOKEN if None)."""
    return RegistryEndpoints(registry_address, pool, environment, token, credentials)
