"""Enums of the domain model (docs/architecture.md). Values are lowercase strings on the wire and in MongoDB."""

from __future__ import annotations

from enum import StrEnum


class WorkerStatus(StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    FAILED = "failed"
    UNKNOWN = "unknown"


class DesiredStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    TERMINATED = "terminated"


class ServiceStatus(StrEnum):
    UNAVAILABLE = "unavailable"
    STARTING = "starting"
    AVAILABLE = "available"
    ERROR = "error"


class LicenseStatus(StrEnum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    DEREGISTERING = "deregistering"
    EVALUATION = "evaluation"
    EXPIRED = "expired"
    INVALID = "invalid"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


class WorkerOrigin(StrEnum):
    DISCOVERED = "discovered"
    CREATED = "created"
    SCALE_UP = "scale_up"


class PauseReason(StrEnum):
    IDLE_TIMEOUT = "idle_timeout"
    MANUAL = "manual"


#: EC2 instance state name → worker status. EC2 is authoritative for what it reports.
EC2_STATE_TO_STATUS: dict[str, WorkerStatus] = {
    "pending": WorkerStatus.STARTING,
    "running": WorkerStatus.RUNNING,
    "stopping": WorkerStatus.STOPPING,
    "stopped": WorkerStatus.STOPPED,
    "shutting-down": WorkerStatus.TERMINATING,
    "terminated": WorkerStatus.TERMINATED,
}


def status_from_ec2(state: str | None) -> WorkerStatus:
    """Map an EC2 state name; anything unknown becomes `unknown` rather than an error."""
    return EC2_STATE_TO_STATUS.get((state or "").lower(), WorkerStatus.UNKNOWN)
