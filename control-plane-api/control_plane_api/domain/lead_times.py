"""How long a worker of a template takes to serve sessions (docs/pools.md, "Capacity ahead of demand"). No I/O.

A worker created from a template starts a clock when the control plane asks for it (`provision`), and again
when it is wanted running while its instance is stopped (`resume`). The first time its row serves sessions
(`lcm_core.domain.pool_capacity.serving`) the elapsed time, on the control plane's clock only, is one sample of
its template's lead time; the clock then stops. The autoscaler counts with the p95 of the recent samples
(`lcm_core.domain.pool_forecast.lead_time`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.domain.events import DomainEvent
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.pool_capacity import serving

if TYPE_CHECKING:
    from lcm_core.domain.workers import WorkerSummary

#: Samples kept per template and kind (the newest): more than the lead time's window, for the record.
SAMPLES_KEPT = 50


class LeadKind(StrEnum):
    PROVISION = "provision"
    """From the request for a new worker to serving: EC2 launch, CML boot, licence registration."""
    RESUME = "resume"
    """From the request to run a stopped worker again to serving."""


class LeadClock(BaseModel):
    """A clock running on a worker until it first serves after a launch or a resume."""

    model_config = ConfigDict(extra="forbid")

    kind: LeadKind
    since: datetime


class LeadSample(BaseModel):
    """One measured lead time of a template."""

    model_config = ConfigDict(extra="forbid")

    template_name: str
    kind: LeadKind
    worker_id: str
    started_at: datetime
    serving_at: datetime
    seconds: float = Field(ge=0)

    @property
    def key(self) -> str:
        """One sample per clock: a worker's clock measured twice (two replicas, a retried report) is one."""
        return f"{self.worker_id}:{self.kind.value}:{self.started_at.isoformat()}"


def measured(template_name: str, worker_id: str, clock: LeadClock, now: datetime) -> LeadSample:
    """The sample a clock gives when its worker serves at `now` (never negative: clocks of two replicas may
    differ by a little)."""
    return LeadSample(template_name=template_name, kind=clock.kind, worker_id=worker_id, started_at=clock.since,
                      serving_at=now, seconds=round(max(0.0, (now - clock.since).total_seconds()), 1))


class LeadTiming:
    """Behaviour only (a mixin of `Worker`, which supplies the fields named below)."""

    if TYPE_CHECKING:
        id: str
        template_name: str | None
        status: WorkerStatus
        lead_clock: LeadClock | None

        def to_summary(self) -> WorkerSummary: ...

    def start_lead_clock(self, kind: LeadKind, now: datetime) -> None:
        """Only a worker of a template is timed: a lead time is its template's."""
        if self.template_name is not None:
            self.lead_clock = LeadClock(kind=kind, since=now)

    def resume_lead_clock(self, now: datetime) -> None:
        """Wanted running again: timed when its instance is down (a worker still up that is kept, its drain
        ended, serves again at once and says nothing of how long a resume takes)."""
        if self.status in (WorkerStatus.STOPPED, WorkerStatus.STOPPING):
            self.start_lead_clock(LeadKind.RESUME, now)

    def lead_sample(self, now: datetime) -> LeadSample | None:
        """The sample of the running clock if the worker serves now (None otherwise)."""
        clock = self.lead_clock
        if clock is None or self.template_name is None or not serving(self.to_summary()):
            return None
        return measured(self.template_name, self.id, clock, now)

    def stop_lead_clock(self, since: datetime) -> list[DomainEvent]:
        """The clock started at `since` was measured: it stops (a clock started since is kept). No event: the
        sample is what tells."""
        if self.lead_clock is not None and self.lead_clock.since == since:
            self.lead_clock = None
        return []


__all__ = ["SAMPLES_KEPT", "LeadClock", "LeadKind", "LeadSample", "LeadTiming", "measured"]
