"""The LabletSession aggregate (docs/lablets.md): one run of a pinned definition version in a timeslot,
with the explicit transition table of `lcm_core.domain.lablets`. No I/O.

Behaviours mutate the session and return its domain events; whether a change releases capacity on the
worker is answered by `releases_capacity` (the application then releases, keyed by session id).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import FenceTokens
from control_plane_api.domain.lablet_definition import LabletDefinition
from control_plane_api.domain.lablet_observation import compare_ports
from control_plane_api.domain.worker_state import STATE_HISTORY_LIMIT, Model, StateChange
from lcm_core.domain.lablets import (
    EXPIRABLE_SESSION_STATUSES,
    LAB_SESSION_STATUSES,
    OBSERVABLE_SESSION_STATUSES,
    LabletSessionStatus,
    PortSpec,
    ResourceObservation,
    ResourceRequirements,
    SchedulingDecision,
    SessionStateKey,
    SessionWorkView,
    can_transition,
)
from lcm_core.errors import ConflictError

S = LabletSessionStatus
#: Statuses an observation may be recorded in (observation never blocks teardown).
RECORDABLE_OBSERVATION_STATUSES = frozenset({S.READY, S.RUNNING, S.COLLECTING, S.STOPPING})


class LabletSession(Model):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    definition_id: str
    definition_version: int
    definition_name: str
    owner: str
    timeslot_start: datetime
    timeslot_end: datetime
    status: LabletSessionStatus = S.PENDING
    resource_requirements: ResourceRequirements
    port_template: list[PortSpec] = Field(default_factory=list)
    lab_track: str | None = None
    license_affinity: list[str] = Field(default_factory=list)
    worker_id: str | None = None
    cml_lab_id: str | None = None
    allocated_ports: dict[str, int] = Field(default_factory=dict)
    pending_reason: str | None = None
    last_decision: SchedulingDecision | None = None
    scheduling_attempts: int = 0
    scheduled_at: datetime | None = None
    terminate_requested: bool = False
    observe_requested: bool = False
    observe_request_id: str | None = None
    observed_resources: ResourceObservation | None = None
    observed_ports: dict[str, int] | None = None
    port_drift_detected: bool = False
    port_drift: dict[str, Any] | None = None
    observation_count: int = 0
    observed_at: datetime | None = None
    last_error: str | None = None
    created_by: str | None = None
    state_history: list[StateChange] = Field(default_factory=list)
    status_changed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int = 0
    fence: FenceTokens = Field(default_factory=dict)

    # ------------------------------------------------------------------ helpers

    def _event(self, type_: str, **data: Any) -> DomainEvent:
        return DomainEvent(type=type_, subject_id=self.id, data={
            "session_id": self.id, "definition_id": self.definition_id, "status": self.status.value,
            "worker_id": self.worker_id, **data})

    def _move(self, to: LabletSessionStatus, now: datetime, reason: str, by: str) -> list[DomainEvent]:
        old = self.status
        self.status, self.status_changed_at = to, now
        self.state_history.append(StateChange(from_=old.value, to=to.value, at=now, reason=reason, by=by))
        del self.state_history[:-STATE_HISTORY_LIMIT]
        return [self._event(ev.LABLET_SESSION_STATUS_CHANGED, old_status=old.value, new_status=to.value,
                            reason=reason)]

    def work_view(self) -> SessionWorkView:
        return SessionWorkView.model_validate(self.model_dump(include=set(SessionWorkView.model_fields)))

    def state_key(self) -> dict[str, Any]:
        return SessionStateKey(session_id=self.id, status=self.status, version=self.version,
                               worker_id=self.worker_id, cml_lab_id=self.cml_lab_id,
                               terminate_requested=self.terminate_requested).model_dump(mode="json")

    def is_overdue(self, now: datetime) -> bool:
        return self.status in EXPIRABLE_SESSION_STATUSES and self.timeslot_end <= now

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(cls, definition: LabletDefinition, owner: str, start: datetime, end: datetime, now: datetime,
               by: str) -> tuple[LabletSession, list[DomainEvent]]:
        session = cls(definition_id=definition.id, definition_version=definition.version,
                      definition_name=definition.name, owner=owner, timeslot_start=start, timeslot_end=end,
                      resource_requirements=definition.resource_requirements.model_copy(),
                      port_template=[p.model_copy() for p in definition.port_template],
                      lab_track=definition.lab_track, license_affinity=list(definition.license_affinity),
                      pending_reason="waiting for the scheduler", created_by=by, created_at=now, updated_at=now,
                      status_changed_at=now)
        session.state_history.append(StateChange(to=S.PENDING.value, at=now, reason="created", by=by))
        return session, [session._event(ev.LABLET_SESSION_CREATED, owner=owner, definition_version=definition.version,
                                        timeslot_start=start.isoformat(), timeslot_end=end.isoformat())]

    # ------------------------------------------------------------------ scheduling

    def schedule(self, worker_id: str, ports: dict[str, int], decision: SchedulingDecision, now: datetime,
                 by: str) -> list[DomainEvent]:
        if self.status is S.SCHEDULED and self.worker_id == worker_id:
            return []
        if self.status is not S.PENDING:
            raise ConflictError(f"session {self.id} is {self.status.value}; only a pending session is scheduled",
                                session_id=self.id)
        self.worker_id, self.allocated_ports, self.scheduled_at = worker_id, dict(ports), now
        self.last_decision, self.pending_reason = decision, None
        self.scheduling_attempts += 1
        events = self._move(S.SCHEDULED, now, decision.reason or f"placed on worker {worker_id}", by)
        return [*events, self._event(ev.LABLET_SESSION_SCHEDULED, allocated_ports=self.allocated_ports,
                                     strategy=decision.strategy.value,
                                     candidates_evaluated=decision.candidates_evaluated)]

    def record_no_candidate(self, decision: SchedulingDecision, now: datetime) -> list[DomainEvent]:
        """The scheduler found no worker: stay pending with the reason (an event only when it changes)."""
        if self.status is not S.PENDING:
            raise ConflictError(f"session {self.id} is {self.status.value}, not pending", session_id=self.id)
        self.scheduling_attempts += 1
        self.last_decision = decision
        if self.pending_reason == decision.reason:
            return []
        self.pending_reason = decision.reason
        return [self._event(ev.LABLET_SESSION_SCHEDULING_FAILED, reason=decision.reason,
                            candidates_evaluated=decision.candidates_evaluated, at=now.isoformat())]

    # ------------------------------------------------------------------ lifecycle

    def transition(self, to: LabletSessionStatus, reason: str, now: datetime, by: str,
                   error: str | None = None) -> list[DomainEvent]:
        """Move along the table; staying is a no-op; `scheduled` and `ready` have their own commands."""
        if to is self.status:
            return []
        if to is S.SCHEDULED:
            raise ConflictError("a session is scheduled through /schedule (it allocates capacity and ports)")
        if to is S.READY:
            raise ConflictError("a session becomes ready through /mark-ready (it records the CML lab id)")
        if not can_transition(self.status, to):
            raise ConflictError(f"session {self.id} cannot go from {self.status.value} to {to.value}",
                                session_id=self.id, status=self.status.value)
        if error:
            self.last_error = error
        events = self._move(to, now, reason, by)
        if to is S.PENDING:  # unscheduled: the worker gave everything back
            self.pending_reason = f"unscheduled from worker {self.worker_id}: {reason}"
            self.worker_id, self.allocated_ports, self.scheduled_at = None, {}, None
        if to in (S.STOPPED, S.TERMINATED, S.EXPIRED):
            self.observe_requested, self.observe_request_id = False, None
        return events

    def expire(self, now: datetime, by: str) -> list[DomainEvent]:
        if self.status is S.EXPIRED or not self.is_overdue(now):
            return []
        return self.transition(S.EXPIRED, f"timeslot ended at {self.timeslot_end.isoformat()}", now, by)

    def mark_ready(self, cml_lab_id: str, now: datetime, by: str) -> list[DomainEvent]:
        if self.status is S.READY and self.cml_lab_id == cml_lab_id:
            return []
        if self.status is not S.INSTANTIATING:
            raise ConflictError(f"session {self.id} is {self.status.value}; only an instantiating session "
                                "becomes ready", session_id=self.id)
        self.cml_lab_id = cml_lab_id
        events = self._move(S.READY, now, f"lab {cml_lab_id} booted", by)
        return [*events, self._event(ev.LABLET_SESSION_READY, cml_lab_id=cml_lab_id,
                                     allocated_ports=self.allocated_ports)]

    def request_terminate(self, now: datetime, by: str, reason: str) -> list[DomainEvent]:
        """Without a lab: terminated at once. With one: the controller tears it down (via stopping)."""
        if self.status in (S.TERMINATED, S.EXPIRED, S.ARCHIVED, S.STOPPED) or self.terminate_requested:
            return []
        if self.status in LAB_SESSION_STATUSES:
            self.terminate_requested = True
            events = [self._event(ev.LABLET_SESSION_TERMINATE_REQUESTED, reason=reason, by=by)]
            if self.status is not S.STOPPING:
                events += self._move(S.STOPPING, now, f"terminate requested: {reason}", by)
            return events
        return self.transition(S.TERMINATED, reason, now, by)

    # ------------------------------------------------------------------ resource observation

    def request_observation(self, request_id: str, now: datetime, by: str) -> list[DomainEvent]:
        if self.status not in OBSERVABLE_SESSION_STATUSES:
            raise ConflictError(f"session {self.id} is {self.status.value}; resources are observed in "
                                "ready or running", session_id=self.id)
        self.observe_requested, self.observe_request_id = True, request_id
        return [self._event(ev.LABLET_SESSION_OBSERVE_REQUESTED, request_id=request_id, by=by,
                            requested_at=now.isoformat())]

    def record_observation(self, observation: ResourceObservation, now: datetime) -> list[DomainEvent]:
        if self.status not in RECORDABLE_OBSERVATION_STATUSES:
            raise ConflictError(f"session {self.id} is {self.status.value}; no live lab to observe",
                                session_id=self.id)
        drift = compare_ports(self.allocated_ports, observation.observed_ports)
        self.observed_resources = observation
        self.observed_ports = dict(observation.observed_ports)
        self.port_drift_detected = drift.detected
        self.port_drift = drift.as_dict() if drift.detected else None
        self.observation_count += 1
        self.observed_at = observation.observed_at
        self.observe_requested, self.observe_request_id = False, None
        events = [self._event(ev.LABLET_SESSION_RESOURCES_OBSERVED, observer=observation.observer,
                              total_cpu_cores=observation.total_cpu_cores,
                              total_memory_mb=observation.total_memory_mb,
                              actual_node_count=observation.actual_node_count,
                              observed_ports=self.observed_ports, observation_count=self.observation_count,
                              port_drift_detected=drift.detected)]
        if drift.detected:
            events.append(self._event(ev.LABLET_SESSION_PORT_DRIFT_DETECTED, **drift.as_dict(),
                                      allocated_ports=self.allocated_ports, observed_ports=self.observed_ports))
        return events
