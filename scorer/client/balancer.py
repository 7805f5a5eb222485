"""The pool's state machine: endpoints, health per model and ejections in; a new picker per change out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import grpc

from rtscore.errors import InvalidArgument
from scorer.client.endpoint import Endpoint
from scorer.client.picker import EMPTY, Picker
from scorer.client.settings import PoolSettings
from scorer.client.telemetry import PoolTelemetry

log = logging.getLogger(__name__)


class Balancer:
    """Owns every endpoint; each change rebuilds the affected models' pickers, which calls only read."""

    def __init__(
        self,
        settings: PoolSettings,
        credentials: grpc.ChannelCredentials | None,
        telemetry: PoolTelemetry,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.telemetry = telemetry
        self.endpoints: dict[str, Endpoint] = {}  # by key: the address, or address#i for several connections
        # model -> picker; replaced, never mutated, so a call's one lookup sees a consistent set
        self.pickers: dict[str, Picker] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self._membership_known = asyncio.Event()
        self._readmit: dict[Endpoint, asyncio.TimerHandle] = {}

    # --- inputs -------------------------------------------------------------------------------------

    def set_endpoints(self, addresses: Iterable[str]) -> list[Endpoint]:
        """Make the endpoint set `addresses`; returns the endpoints that left (for the caller to close)."""
        wanted = dict.fromkeys(addresses)
        gone = [e for e in self.endpoints.values() if e.address not in wanted]
        for endpoint in gone:
            del self.endpoints[endpoint.key]
            handle = self._readmit.pop(endpoint, None)
            if handle is not None:
                handle.cancel()
        connections = self.settings.connections_per_endpoint
        for address in wanted:
            for i in range(connections):
                key = address if connections == 1 else f"{address}#{i}"
                if key in self.endpoints:
                    continue
                endpoint = Endpoint(address, self.settings, self.credentials, self.health_changed, key)
                self.endpoints[key] = endpoint
                for model in self._ready:
                    endpoint.watch(model)
        self._rebuild(self._ready)
        self._membership_known.set()
        if gone:
            log.info("scorers left the pool", extra={"endpoints": sorted({e.address for e in gone})})
        return gone

    def health_changed(self, endpoint: Endpoint, model: str, serving: bool, reason: str) -> None:
        """A health watch saw `model` turn SERVING or not on `endpoint`."""
        if self.endpoints.get(endpoint.key) is endpoint:
            self._rebuild((model,))

    def want(self, model: str) -> asyncio.Event:
        """Follow `model`'s health on every endpoint from now on; returns the event set while it is ready."""
        event = self._ready.get(model)
        if event is None:
            if len(self._ready) >= self.settings.max_models:
                raise InvalidArgument(
                    f"the pool already follows {len(self._ready)} models; {model!r} would be one too many"
                )
            event = self._ready[model] = asyncio.Event()
            self.pickers = {**self.pickers, model: EMPTY}
            for endpoint in self.endpoints.values():
                endpoint.watch(model)
        return event

    def failed(self, endpoint: Endpoint) -> None:
        """An endpoint's calls keep failing: eject it for a backoff that doubles with each ejection."""
        if endpoint.ejected or self.endpoints.get(endpoint.key) is not endpoint:
            return
        ready = [e for e in self.endpoints.values() if any(e.serving.values())]
        ejected = sum(1 for e in ready if e.ejected)
        if ready and (ejected + 1) > self.settings.max_ejected_share * len(ready):
            return  # ejecting more would leave too little capacity: keep it, its cost stays high
        endpoint.ejected = True
        seconds = min(self.settings.eject_base_s * 2**endpoint.ejections, self.settings.eject_max_s)
        endpoint.ejections += 1
        self.telemetry.ejected(endpoint.address)
        log.warning("scorer ejected", extra={"endpoint": endpoint.key, "seconds": seconds})
        loop = asyncio.get_running_loop()
        self._readmit[endpoint] = loop.call_later(seconds, self._return, endpoint)
        self._rebuild(self._ready)

    def _return(self, endpoint: Endpoint) -> None:
        self._readmit.pop(endpoint, None)
        endpoint.ejected = False
        endpoint.failures = 0
        self._rebuild(self._ready)

    # --- outputs ------------------------------------------------------------------------------------

    def _rebuild(self, models: Iterable[str]) -> None:
        pickers = dict(self.pickers)
        for model in models:
            ready = tuple(e for e in self.endpoints.values() if e.ready(model))
            pickers[model] = Picker(ready, self.settings.cost_tolerance)
            event = self._ready.get(model)
            if event is not None:
                if ready:
                    event.set()
                else:
                    event.clear()
        self.pickers = pickers

    async def membership_known(self) -> None:
        """Until the endpoint source has given its first list."""
        await self._membership_known.wait()

    def why_not_ready(self, model: str) -> str:
        """Each endpoint's last word on `model`, for an error message."""
        if not self.endpoints:
            return "the pool has no endpoints"
        parts = []
        for endpoint in self.endpoints.values():
            reason = endpoint.reasons.get(model, "not watched yet")
            parts.append(f"{endpoint.key}: {'ejected' if endpoint.ejected else reason}")
        return "; ".join(parts)

    def hosted_nowhere(self, model: str) -> bool:
        """True when every endpoint has answered that it does not host `model`."""
        reasons = [e.reasons.get(model) for e in self.endpoints.values()]
        return bool(reasons) and all(r == "SERVICE_UNKNOWN" for r in reasons)

    def close(self) -> list[Endpoint]:
        """Forget every endpoint; returns them for the caller to close."""
        for handle in self._readmit.values():
            handle.cancel()
        self._readmit.clear()
        endpoints = list(self.endpoints.values())
        self.endpoints.clear()
        self._rebuild(list(self._ready))
        return endpoints
