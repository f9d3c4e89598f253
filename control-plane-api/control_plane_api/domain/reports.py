"""What controllers report about a worker: validated value objects (the internal API's bodies)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.domain.worker_state import CmlSystemHealth, CmlSystemInfo
from lcm_core.domain.enums import LicenseStatus, ServiceStatus
from lcm_core.domain.types import AmiId, AwsRegion, Count, Flag, InstanceType, Instant, IpAddress, Label, Number, Text


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DiscoveredInstance(_Report):
    """One EC2 instance found by discovery."""

    aws_instance_id: str = Field(pattern=r"^i-[0-9a-f]{8,17}$")
    aws_region: AwsRegion
    name: Label | None = None
    instance_type: InstanceType | None = None
    ami_id: AmiId | None = None
    ami_name: Label | None = None
    state: Label | None = Field(default=None, max_length=32)
    public_ip: IpAddress | None = None
    private_ip: IpAddress | None = None
    launch_time: Instant | None = None
    tags: dict[Label, Label] = Field(default_factory=dict, max_length=50)
    observed_at: Instant | None = None
    """When EC2 was read: a state seen before the worker's last status change is not applied."""


class Ec2Report(_Report):
    state: Label | None = Field(default=None, max_length=32)
    system_status: Label | None = Field(default=None, max_length=32)
    instance_status: Label | None = Field(default=None, max_length=32)


class CloudWatchReport(_Report):
    cpu_utilization: Number | None = Field(default=None, ge=0, le=100)
    network_in_bytes: Number | None = Field(default=None, ge=0)
    network_out_bytes: Number | None = Field(default=None, ge=0)


class LicenseReport(_Report):
    registration_status: Label | None = Field(default=None, max_length=64)
    authorization_status: Label | None = Field(default=None, max_length=64)
    expires: Instant | None = None
    product: Label | None = None
    is_enterprise: Flag | None = None
    node_limit: Count | None = None
    nodes_in_use: Count | None = None


#: A CML endpoint's name, as the worker-controller names it (`system_stats`, `system_health`, ...).
CmlSource = Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,39}$")]


class CmlReport(_Report):
    reachable: Flag = True
    error: Text | None = Field(default=None, max_length=1000)
    failed: dict[CmlSource, Annotated[Text, Field(max_length=300)]] = Field(default_factory=dict, max_length=16)
    """The endpoints that failed or answered nothing readable, with why: their sections are left out, and
    what the worker had of them is kept, marked stale."""
    version: Label | None = Field(default=None, max_length=64)
    ready: Flag | None = None
    system_info: CmlSystemInfo | None = None
    system_health: CmlSystemHealth | None = None
    license: LicenseReport | None = None
    labs_count: Count | None = None
    lab_ids: list[Label] | None = Field(default=None, max_length=10000)
    uptime_seconds: Number | None = Field(default=None, ge=0)
    last_activity_at: Instant | None = None
    """Latest user activity seen in CML telemetry events (lab start/stop, node actions)."""


class MetricsReport(_Report):
    """One worker's metrics cycle; every part optional (a failed source is simply absent)."""

    collected_at: Instant
    ec2: Ec2Report | None = None
    cloudwatch: CloudWatchReport | None = None
    cml: CmlReport | None = None


class StatusReport(_Report):
    """The EC2 state a controller observed (EC2 is authoritative), with the addresses it saw."""

    ec2_state: Annotated[Label, Field(min_length=1, max_length=32)]
    reason: Text | None = Field(default=None, max_length=500)
    public_ip: IpAddress | None = None
    private_ip: IpAddress | None = None
    service_status: ServiceStatus | None = None
    cml_version: Label | None = Field(default=None, max_length=64)
    observed_at: Instant | None = None
    """When the controller read EC2 for this report. A report observed before the worker's last status or
    desired-status change is ignored: it would overwrite newer knowledge with older."""


class LicenseProgress(_Report):
    """How a licence request is going, reported by the worker-controller."""

    status: LicenseStatus | None = None
    finished: Flag = False
    """True when the request is over (done or failed): the pending action is cleared."""
    error: Text | None = Field(default=None, max_length=1000)
    details: LicenseReport | None = None
    restore_on_start: Flag | None = None
    """Set with a deregistration made because the worker is being stopped: register it again when it runs."""


def compact(value: dict[str, Any]) -> dict[str, Any]:
    """Drop None values (for event payloads)."""
    return {k: v for k, v in value.items() if v is not None}
