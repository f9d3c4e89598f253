"""What controllers report about a worker: validated value objects (the internal API's bodies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.domain.worker_state import CmlSystemHealth, CmlSystemInfo
from lcm_core.domain.enums import LicenseStatus, ServiceStatus


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiscoveredInstance(_Report):
    """One EC2 instance found by discovery."""

    aws_instance_id: str = Field(pattern=r"^i-[0-9a-f]{8,17}$")
    aws_region: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=256)
    instance_type: str | None = Field(default=None, max_length=64)
    ami_id: str | None = Field(default=None, max_length=64)
    ami_name: str | None = Field(default=None, max_length=256)
    state: str | None = Field(default=None, max_length=32)
    public_ip: str | None = Field(default=None, max_length=64)
    private_ip: str | None = Field(default=None, max_length=64)
    launch_time: datetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class Ec2Report(_Report):
    state: str | None = Field(default=None, max_length=32)
    system_status: str | None = Field(default=None, max_length=32)
    instance_status: str | None = Field(default=None, max_length=32)


class CloudWatchReport(_Report):
    cpu_utilization: float | None = Field(default=None, ge=0, le=100)
    network_in_bytes: float | None = Field(default=None, ge=0)
    network_out_bytes: float | None = Field(default=None, ge=0)


class LicenseReport(_Report):
    registration_status: str | None = None
    authorization_status: str | None = None
    expires: datetime | None = None
    product: str | None = None
    is_enterprise: bool | None = None
    node_limit: int | None = Field(default=None, ge=0)
    nodes_in_use: int | None = Field(default=None, ge=0)


class CmlReport(_Report):
    reachable: bool = True
    error: str | None = Field(default=None, max_length=1000)
    version: str | None = Field(default=None, max_length=64)
    ready: bool | None = None
    system_info: CmlSystemInfo | None = None
    system_health: CmlSystemHealth | None = None
    license: LicenseReport | None = None
    labs_count: int | None = Field(default=None, ge=0)
    lab_ids: list[str] | None = None
    uptime_seconds: float | None = Field(default=None, ge=0)
    last_activity_at: datetime | None = None
    """Latest user activity seen in CML telemetry events (lab start/stop, node actions)."""


class MetricsReport(_Report):
    """One worker's metrics cycle; every part optional (a failed source is simply absent)."""

    collected_at: datetime
    ec2: Ec2Report | None = None
    cloudwatch: CloudWatchReport | None = None
    cml: CmlReport | None = None


class StatusReport(_Report):
    """The EC2 state a controller observed (EC2 is authoritative), with the addresses it saw."""

    ec2_state: str = Field(min_length=1, max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    public_ip: str | None = Field(default=None, max_length=64)
    private_ip: str | None = Field(default=None, max_length=64)
    service_status: ServiceStatus | None = None
    cml_version: str | None = Field(default=None, max_length=64)


class LicenseProgress(_Report):
    """How a licence request is going, reported by the worker-controller."""

    status: LicenseStatus | None = None
    finished: bool = False
    """True when the request is over (done or failed): the pending action is cleared."""
    error: str | None = Field(default=None, max_length=1000)
    details: LicenseReport | None = None


def compact(value: dict[str, Any]) -> dict[str, Any]:
    """Drop None values (for event payloads)."""
    return {k: v for k, v in value.items() if v is not None}
