"""gRPC health per service and per model, driven by the hosted models' canaries."""

from __future__ import annotations

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from scorer.service.canary import CanaryResult
from scorer.service.model import HostedModel
from scorer.service.table import ModelTable

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

# gRPC services of the scorer; they serve while any model does.
SERVICES = ("rtscore.v1.Scorer", "ml.combust.mleap.pb.Mleap")


class HealthBoard:
    """Publishes health: `""` and each service SERVING iff some model serves; each model by every address."""

    def __init__(self, servicer: HealthServicer) -> None:
        self.servicer = servicer
        self._published: set[str] = set()

    async def models_changed(self, table: ModelTable) -> None:
        """Republish every status from the table."""
        # Every address a call can use (name, name@version, role alias) has a status of its own.
        statuses = {ref: SERVING if h.serving else NOT_SERVING for ref, h in table.routes().items()}
        overall = SERVING if SERVING in statuses.values() else NOT_SERVING
        for service in ("", *SERVICES):
            await self.servicer.set(service, overall)
        for name in self._published - statuses.keys():
            await self.servicer.set(name, UNKNOWN)
        for name, status in statuses.items():
            await self.servicer.set(name, status)
        self._published = set(statuses)

    def model_loaded(self, hosted: HostedModel, seconds: float) -> None:
        """Nothing: publication follows `models_changed`."""

    def canary_ran(self, hosted: HostedModel, result: CanaryResult) -> None:
        """Nothing: the core updates `serving` and calls `models_changed`."""

    async def shut_down(self) -> None:
        """Every service NOT_SERVING, for good: the scorer is draining."""
        await self.servicer.enter_graceful_shutdown()
