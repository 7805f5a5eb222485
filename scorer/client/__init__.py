"""The scorer pool client: balanced, health-checked, failing-over calls to a set of scorers."""

from scorer.client.errors import DeadlineExceeded, ModelNotHosted, ScorerCallError
from scorer.client.pool import ScorerPool
from scorer.client.scored import Scored
from scorer.client.settings import PoolSettings
from scorer.client.sources import EndpointSource, registry_endpoints, static_endpoints

__all__ = [
    "DeadlineExceeded",
    "EndpointSource",
    "ModelNotHosted",
    "PoolSettings",
    "Scored",
    "ScorerCallError",
    "ScorerPool",
    "registry_endpoints",
    "static_endpoints",
]
