"""What the autoscaling simulation (autoscaling_sim.py) keeps of each booked session and each pool, and the
small stand-ins it hands the controllers' code."""

from __future__ import annotations

from dataclasses import dataclass, field

from autoscaling_fleet import SimWorker
from autoscaling_workload import BookedSession, LabType

from control_plane_api.domain.pool import WorkerPool
from lcm_core.domain.lablets import LabletSessionStatus, ResourceRequirements, SessionWorkView
from lcm_core.domain.pool_forecast import Booking, LeadTime
from lcm_core.domain.pools import PoolView


@dataclass
class SessionState:
    booked: BookedSession
    pool_id: str
    status: LabletSessionStatus = LabletSessionStatus.PENDING
    worker_id: str | None = None
    placed_at: float | None = None
    waiting_for_pool: str | None = None
    pending_reason: str | None = None
    booking: Booking | None = None
    """As `PoolWork.bookings` carries it (rebuilt when it is placed)."""
    view: SessionWorkView | None = None
    placed_on: str | None = None
    """The worker it was placed on, and when (from its timeslot's start, minutes) that worker was asked for
    and became serving."""
    lab_boot: float = 0.0
    """How long its lab takes to import and boot once placed (`Durations.lab_boot`)."""
    late_because: str | None = None
    """What its pool looked like at the last moment it could be placed and be ready by its timeslot's start,
    when it was still waiting then."""

    @property
    def ready_at(self) -> float | None:
        """When its lab is ready for the students (None: never placed)."""
        return None if self.placed_at is None else self.placed_at + self.lab_boot


@dataclass
class SimPool:
    lab: LabType
    record: WorkerPool
    members: list[SimWorker] = field(default_factory=list)
    provisioned: list[float] = field(default_factory=list)
    """Measured launch-to-serving durations (seconds), oldest first."""
    resumed: list[float] = field(default_factory=list)
    lead: LeadTime | None = None
    view: PoolView | None = None
    live: list[tuple[float, str]] = field(default_factory=list)
    """(timeslot start, session id) of its booked sessions that have not ended, by start."""
    waiting: dict[str, SessionState] = field(default_factory=dict)
    evaluations: int = 0
    resumes: int = 0
    warm_ups: int = 0

    def current_view(self) -> PoolView:
        if self.view is None:
            self.view = self.record.view()
        return self.view


class AlwaysLeading:
    """The fence of a leader whose lease never runs out (one process, one autoscaler)."""

    margin_seconds = 0.0

    def check(self, action: str) -> None:
        return None


@dataclass
class Sample:
    at: float
    running: dict[str, int]
    serving: dict[str, int]


def requirements_of(lab: LabType) -> ResourceRequirements:
    """A lab type's resource requirements as its definition declares them."""
    return ResourceRequirements(cpu_cores=lab.cpu_cores, memory_gb=lab.memory_gb, storage_gb=lab.storage_gb,
                                node_count=lab.nodes)
