"""The worker as the controller sees it (read from the control plane), and the decisions made from it.

Pure functions, no I/O: what EC2 action drives an instance toward the desired status, and what must happen
before an instance may go down (`before_shutdown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.enums import DesiredStatus, ServiceStatus, WorkerStatus, status_from_ec2


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore")


class LicenseView(_View):
    status: str = "unregistered"
    pending_action: str | None = None


#: Licence states in which the worker still holds (or is getting) a Smart Licence that a stop would strand.
HOLDS_LICENSE = frozenset({"registered", "registering", "deregistering"})


class ActivityView(_View):
    idle_detection_enabled: bool = True


class WorkerView(_View):
    id: str
    name: str = ""
    aws_region: str
    aws_instance_id: str | None = None
    template_name: str | None = None
    status: WorkerStatus = WorkerStatus.UNKNOWN
    status_changed_at: datetime | None = None
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
    sessions: int = 0
    """Lablet sessions holding capacity on the worker (their labs run, or will run, on it)."""
    version: int = 0

    def last_change(self) -> datetime | None:
        """The latest of the last status change and the last desired-status change: an EC2 observation
        made before it cannot be the basis of a decision or a report."""
        known = [t for t in (self.status_changed_at, self.desired_changed_at) if t is not None]
        return max(known) if known else None

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


class ShutdownGate(StrEnum):
    PROCEED = "proceed"
    DEREGISTER = "deregister"
    WAIT = "wait"
    REFUSE = "refuse"


@dataclass(frozen=True)
class ShutdownStep:
    gate: ShutdownGate
    reason: str
    licence_stranded: bool = False
    """The instance goes down while still licensed: the licence stays counted until released by hand."""


def before_shutdown(worker: WorkerView, ec2_state: str, waited_seconds: float,
                    deregister_timeout_seconds: float) -> ShutdownStep:
    """What must happen before an instance is stopped or terminated.

    Sessions: never (the control plane drains or ends them first; this is the last line of defence). A licence
    is released first, which needs CML up and the instance running; if CML cannot do it within the timeout,
    the instance goes down anyway (an operator asked for it) and the stranded licence is reported.
    """
    if worker.sessions:
        return ShutdownStep(ShutdownGate.REFUSE, f"holds {worker.sessions} lablet session(s): drain it first")
    licence = worker.license.status
    if licence not in HOLDS_LICENSE:
        return ShutdownStep(ShutdownGate.PROCEED, f"licence {licence}: nothing to release")
    if status_from_ec2(ec2_state) is not WorkerStatus.RUNNING:
        return ShutdownStep(ShutdownGate.PROCEED, f"instance is {ec2_state}: CML cannot release its licence",
                            licence_stranded=True)
    if waited_seconds >= deregister_timeout_seconds:
        return ShutdownStep(ShutdownGate.PROCEED, f"licence still {licence} after {waited_seconds / 60:.0f} min: "
                            "going down without releasing it", licence_stranded=True)
    if worker.service_status is not ServiceStatus.AVAILABLE:
        return ShutdownStep(ShutdownGate.WAIT, f"licence {licence}: waiting for CML to release it "
                            f"(service {worker.service_status.value})")
    return ShutdownStep(ShutdownGate.DEREGISTER, f"licence {licence}: released before the instance goes down")
