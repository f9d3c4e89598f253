"""The worker as the controller sees it (read from the control plane), and the decisions made from it.

Pure functions, no I/O: what EC2 action drives an instance toward the desired status.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.enums import DesiredStatus, ServiceStatus, WorkerStatus, status_from_ec2


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LicenseView(_View):
    status: str = "unregistered"
    pending_action: str | None = None


class ActivityView(_View):
    idle_detection_enabled: bool = True


class WorkerView(_View):
    id: str
    name: str = ""
    aws_region: str
    aws_instance_id: str | None = None
    template_name: str | None = None
    status: WorkerStatus = WorkerStatus.UNKNOWN
    desired_status: DesiredStatus | None = None
    desired_changed_at: datetime | None = None
    service_status: ServiceStatus = ServiceStatus.UNAVAILABLE
    cml_version: str | None = None
    health_status: str = "unknown"
    private_ip: str | None = None
    public_ip: str | None = None
    license: LicenseView = Field(default_factory=LicenseView)
    activity: ActivityView = Field(default_factory=ActivityView)
    refresh_requested_at: datetime | None = None
    version: int = 0

    def cml_url(self, template: str) -> str | None:
        """The worker's CML base URL from `CML_WORKER_URL_TEMPLATE`; None while it has no address."""
        address = self.private_ip or self.public_ip
        if "{ip_address}" in template and not address:
            return None
        if self.aws_instance_id is None:
            return None
        return template.format(ip_address=address or "", instance_id=self.aws_instance_id).rstrip("/")


class Ec2Action(StrEnum):
    START = "start"
    STOP = "stop"
    TERMINATE = "terminate"


def action_toward(desired: DesiredStatus | None, ec2_state: str | None) -> Ec2Action | None:
    """The EC2 call that moves an instance in `ec2_state` toward `desired`, or None (nothing to do now).

    Transitional states (pending, stopping, shutting-down) are waited out, not fought.
    """
    if desired is None or ec2_state is None:
        return None
    observed = status_from_ec2(ec2_state)
    if desired is DesiredStatus.TERMINATED:
        return None if observed in (WorkerStatus.TERMINATING, WorkerStatus.TERMINATED) else Ec2Action.TERMINATE
    if desired is DesiredStatus.RUNNING and observed is WorkerStatus.STOPPED:
        return Ec2Action.START
    if desired is DesiredStatus.STOPPED and observed is WorkerStatus.RUNNING:
        return Ec2Action.STOP
    return None
