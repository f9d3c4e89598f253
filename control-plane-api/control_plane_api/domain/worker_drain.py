"""Draining and session-safe shutdown of a Worker (a mixin of `Worker`, like `WorkerTelemetry`). No I/O.

A worker that holds lablet sessions is never stopped or terminated outright: the sessions' labs would die
under the students. An operator drains it instead: it takes no new session, and once its last session has
released its capacity it goes on by itself to what the operator chose (stopped, terminated, or kept running
but drained, for maintenance). A forced stop is a drain whose sessions the application ends first.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from lcm_core.domain.enums import DesiredStatus, WorkerStatus
from lcm_core.errors import ConflictError

if TYPE_CHECKING:
    from control_plane_api.domain.worker_state import Capacity, StateChange

#: The worker statuses in which there may be sessions to drain.
DRAINABLE = frozenset({WorkerStatus.RUNNING, WorkerStatus.DRAINING})


class Drain(BaseModel):
    """An operator's drain: what follows it, who asked, and when the last session was gone."""

    model_config = ConfigDict(extra="forbid")

    then: DesiredStatus = DesiredStatus.STOPPED
    """Where the worker goes once no session is left (`running`: it stays up, drained, until undrained)."""
    requested_at: datetime
    by: str
    reason: str | None = None
    completed_at: datetime | None = None
    """When the last session had gone (the worker then went on to `then`)."""
    pool_id: str | None = None
    """The pool that retired the worker through this drain: undraining the pool recalls it while sessions
    still hold it (`PoolMembership.recall_to_pool`); an operator's own drain of a worker is never recalled."""


class WorkerDrain:
    """Behaviour only: `Worker` supplies the fields and helpers named below."""

    if TYPE_CHECKING:
        id: str
        status: WorkerStatus
        status_changed_at: datetime | None
        desired_status: DesiredStatus | None
        drain: Drain | None
        capacity: Capacity
        state_history: list[StateChange]

        @property
        def lifecycle_phase(self) -> str: ...

        def _event(self, type_: str, **data: Any) -> DomainEvent: ...
        def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None,
                    by: str | None) -> None: ...
        def request_desired_status(self, desired: DesiredStatus, now: datetime, by: str,
                                   reason: str | None = None, *, force: bool = False) -> list[DomainEvent]: ...

    @property
    def live_sessions(self) -> list[str]:
        """Ids of the lablet sessions that hold capacity on this worker (their labs run or will run here)."""
        return sorted(self.capacity.reservations)

    def refuse_if_sessions(self, action: str) -> None:
        """409 naming the sessions, for an action that would kill their labs."""
        sessions = self.live_sessions
        if sessions:
            shown = ", ".join(sessions[:20]) + (f" and {len(sessions) - 20} more" if len(sessions) > 20 else "")
            raise ConflictError(
                f"worker {self.id} holds {len(sessions)} live session(s): {shown}; drain it (POST .../drain) or "
                f"{action} with ?force=true to end them first", worker_id=self.id, sessions=sessions)

    def request_drain(self, then: DesiredStatus, now: datetime, by: str, reason: str | None,
                      pool_id: str | None = None) -> list[DomainEvent]:
        """Take no new session; once the last one is gone, go on to `then`. Asking again changes `then`.
        `pool_id`: the pool retiring the worker (see `Drain.pool_id`)."""
        if self.status not in DRAINABLE:
            raise ConflictError(f"worker {self.id} is {self.status.value}: only a running worker can be drained",
                                worker_id=self.id)
        if self.drain is not None and self.drain.then is then:
            return []
        if self.drain is not None and self.drain.completed_at is not None and self.drain.then is not \
                DesiredStatus.RUNNING:
            raise ConflictError(f"worker {self.id} is already drained and on its way to "
                                f"{self.drain.then.value}", worker_id=self.id)
        self.drain = Drain(then=then, requested_at=now, by=by, reason=reason, pool_id=pool_id)
        found = self._enter_draining(now, by, reason or f"drain requested by {by}")
        found.append(self._event(ev.WORKER_DRAINING, then=then.value, sessions=self.live_sessions, by=by,
                                 reason=reason, phase=self.lifecycle_phase))
        return found + self.settle_drain(now, by)

    def cancel_drain(self, now: datetime, by: str) -> list[DomainEvent]:
        """Undrain: the worker takes sessions again. Too late once the drain has sent it to stop."""
        drain = self.drain
        if drain is None:
            return []
        if drain.completed_at is not None and drain.then is not DesiredStatus.RUNNING:
            raise ConflictError(f"worker {self.id} is already drained and on its way to {drain.then.value}; "
                                "start it again instead", worker_id=self.id)
        return self.end_drain(now, by)

    def end_drain(self, now: datetime, by: str) -> list[DomainEvent]:
        """The drain is over: a draining worker is running again and takes sessions. What the drain already
        asked for (a stop) is the caller's to take back."""
        self.drain = None
        found: list[DomainEvent] = []
        if self.status is WorkerStatus.DRAINING:
            self.status, self.status_changed_at = WorkerStatus.RUNNING, now
            self._record("status", WorkerStatus.DRAINING.value, WorkerStatus.RUNNING.value, now, "drain cancelled",
                         by)
            found.append(self._event(ev.WORKER_STATUS_UPDATED, old_status=WorkerStatus.DRAINING.value,
                                     new_status=WorkerStatus.RUNNING.value, reason="drain cancelled",
                                     phase=self.lifecycle_phase))
        found.append(self._event(ev.WORKER_DRAIN_CANCELLED, by=by, phase=self.lifecycle_phase))
        return found

    def settle_drain(self, now: datetime, by: str) -> list[DomainEvent]:
        """Level-triggered end of a drain: called whenever a session's capacity is released (and when the
        drain is asked for): with no session left, the worker goes on to what the drain said."""
        drain = self.drain
        if drain is None or drain.completed_at is not None or self.live_sessions:
            return []
        drain.completed_at = now
        found = [self._event(ev.WORKER_DRAINED, then=drain.then.value, by=by, phase=self.lifecycle_phase)]
        if drain.then is not DesiredStatus.RUNNING:
            found += self.request_desired_status(drain.then, now, by, reason=f"drained ({drain.reason or 'drain'})")
        return found

    def _enter_draining(self, now: datetime, by: str, reason: str) -> list[DomainEvent]:
        if self.status is not WorkerStatus.RUNNING:
            return []
        self.status, self.status_changed_at = WorkerStatus.DRAINING, now
        self._record("status", WorkerStatus.RUNNING.value, WorkerStatus.DRAINING.value, now, reason, by)
        return [self._event(ev.WORKER_STATUS_UPDATED, old_status=WorkerStatus.RUNNING.value,
                            new_status=WorkerStatus.DRAINING.value, reason=reason, phase=self.lifecycle_phase)]

    def end_drain_when_down(self) -> None:
        """An instance that is stopped or gone has nothing left to drain."""
        if self.drain is not None and self.status not in (WorkerStatus.RUNNING, WorkerStatus.DRAINING,
                                                          WorkerStatus.STOPPING):
            self.drain = None
