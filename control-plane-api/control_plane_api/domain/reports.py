"""What controllers report about a worker: validated value objects (the internal API's bodies). Its metrics
report is the shared contract's (`lcm_core.domain.workers.WorkerMetricsReport`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.cml_snapshot import CmlLicenseInfo
from lcm_core.domain.enums import LicenseStatus, ServiceStatus
from lcm_core.domain.types import AmiId, AwsRegion, Flag, InstanceType, Instant, IpAddress, Label, Text


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
    details: CmlLicenseInfo | None = None
    """What CML's licensing said at the time (the same shape as a metrics report's `cml.license`)."""
    restore_on_start: Flag | None = None
    """Set with a deregistration made because the worker is being stopped: register it again when it runs."""


def compact(value: dict[str, Any]) -> dict[str, Any]:
    """Drop None values (for event payloads)."""
    return {k: v for k, v in value.items() if v is not None}
