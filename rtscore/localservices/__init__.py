"""Local Postgres and Kafka for development and tests: start, check, report and stop them."""

from rtscore.localservices.errors import ServiceFailed, ServicesNotRunning, ToolMissing
from rtscore.localservices.settings import LocalServicesSettings
from rtscore.localservices.stack import LocalServices, ServiceEndpoints, ServiceStatus

__all__ = [
    "LocalServices",
    "LocalServicesSettings",
    "ServiceEndpoints",
    "ServiceFailed",
    "ServiceStatus",
    "ServicesNotRunning",
    "ToolMissing",
]
