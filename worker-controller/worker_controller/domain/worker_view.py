"""The worker as the controller sees it (read from the control plane), and the decisions made from it.

Pure functions, no I/O: what EC2 action drives an instance toward the desired status, and what must happen
before an instance may go down (`before_shutdown`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lcm_core.domain.enums import DesiredStatus, ServiceStatus, WorkerStatus, status_from_ec2
from lcm_core.domain.workers import WorkerView

__all__ = ["HOLDS_LICENSE", "Ec2Action", "ImportReply", "ShutdownGate", "ShutdownStep", "WorkerView",
           "action_toward", "before_shutdown"]


@dataclass
class ImportReply:
    """The control plane's answer to a bulk import of instances."""

    created: list[str] = field(default_factory=list)
    """Ids of the workers this import created."""
    workers: list[WorkerView] = field(default_factory=list)
    """Every imported instance's worker, as stored after the import."""


#: Licence states in which the worker still holds (or is getting) a Smart Licence that a stop would strand.
HOLDS_LICENSE = frozenset({"registered", "registering", "deregistering"})


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
