"""A Worker's membership of a worker pool (a mixin of `Worker`, like `WorkerDrain`). No I/O.

A member serves its pool's lab track. The pool's autoscaler resumes parked members and retires the ones it no
longer needs: a running member is drained first (its sessions end on their own), then stopped or terminated.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.worker_drain import DRAINABLE
from lcm_core.domain.enums import DesiredStatus, WorkerStatus
from lcm_core.errors import ConflictError

if TYPE_CHECKING:
    from control_plane_api.domain.worker_drain import Drain
    from control_plane_api.domain.worker_state import License


class PoolMembership:
    """Behaviour only: `Worker` supplies the fields and helpers named below."""

    if TYPE_CHECKING:
        id: str
        status: WorkerStatus
        desired_status: DesiredStatus | None
        aws_instance_id: str | None
        pool_id: str | None
        lab_track: str | None
        drain: Drain | None
        park_when_ready: bool
        license: License

        def _event(self, type_: str, **data: Any) -> DomainEvent: ...
        def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None,
                    by: str | None) -> None: ...
        def request_desired_status(self, desired: DesiredStatus, now: datetime, by: str,
                                   reason: str | None = None, *, force: bool = False) -> list[DomainEvent]: ...
        def request_drain(self, then: DesiredStatus, now: datetime, by: str,
                          reason: str | None, pool_id: str | None = None) -> list[DomainEvent]: ...
        def end_drain(self, now: datetime, by: str) -> list[DomainEvent]: ...

    def _set_membership(self, pool_id: str | None, lab_track: str | None, now: datetime, by: str,
                        reason: str) -> list[DomainEvent]:
        old_pool, old_track = self.pool_id, self.lab_track
        self.pool_id, self.lab_track = pool_id, lab_track
        self._record("pool_id", old_pool, pool_id or "", now, reason, by)
        if old_track != lab_track:
            self._record("lab_track", old_track, lab_track or "", now, reason, by)
        return [self._event(ev.WORKER_POOL_CHANGED, pool_id=pool_id, previous_pool_id=old_pool, lab_track=lab_track,
                            previous_lab_track=old_track, reason=reason, by=by)]

    def join_pool(self, pool_id: str, lab_track: str, now: datetime, by: str) -> list[DomainEvent]:
        """Become a member of `pool_id`, serving its track. Idempotent; 409 for a member of another pool or a
        worker that is gone or asked to go (a drain then terminate included)."""
        if self.pool_id == pool_id and self.lab_track == lab_track:
            return []
        if self.status is WorkerStatus.TERMINATED or DesiredStatus.TERMINATED in (
                self.desired_status, self.drain.then if self.drain else None):
            raise ConflictError(f"worker {self.id} is terminated (or on its way, drained first); it cannot join a "
                                "pool", worker_id=self.id)
        if self.pool_id is not None and self.pool_id != pool_id:
            raise ConflictError(f"worker {self.id} belongs to pool {self.pool_id}; release it from that pool first",
                                worker_id=self.id, pool_id=self.pool_id)
        return self._set_membership(pool_id, lab_track, now, by, f"joined pool {pool_id}")

    def leave_pool(self, pool_id: str, pool_track: str, now: datetime, by: str,
                   restore_track: str | None = None) -> list[DomainEvent]:
        """Leave `pool_id`: the worker keeps its lab track unless it was the pool's (then `restore_track`, None
        by default). Idempotent for a worker in no pool; 409 for a member of another pool."""
        if self.pool_id is None:
            return []
        if self.pool_id != pool_id:
            raise ConflictError(f"worker {self.id} is in pool {self.pool_id}, not {pool_id}", worker_id=self.id,
                                pool_id=self.pool_id)
        track = restore_track if self.lab_track == pool_track else self.lab_track
        return self._set_membership(None, track, now, by, f"left pool {pool_id}")

    def follow_pool_track(self, pool_id: str, lab_track: str, now: datetime, by: str) -> list[DomainEvent]:
        """The pool now serves `lab_track`: so does this member (an operator's own choice is refused for a
        member, see `Worker.set_lab_track`)."""
        self._require_member(pool_id)
        if self.lab_track == lab_track:
            return []
        old, self.lab_track = self.lab_track, lab_track
        self._record("lab_track", old, lab_track, now, f"pool {pool_id} serves {lab_track}", by)
        return [self._event(ev.WORKER_LAB_TRACK_CHANGED, lab_track=lab_track, previous=old, by=by)]

    def recall_to_pool(self, pool_id: str, now: datetime, by: str) -> list[DomainEvent]:
        """The pool that retired this member wants it again (an operator undrained the pool): while its
        sessions still hold it, its drain is cancelled and it serves the pool as before, still licensed, instead
        of the pool launching a worker in its place. Nothing changes once the drain has completed (the worker is
        on its way down; the pool resumes it later if it needs it) or for a drain the pool did not ask for."""
        self._require_member(pool_id)
        drain = self.drain
        if drain is None or drain.pool_id != pool_id or drain.completed_at is not None:
            return []
        return self.end_drain(now, by)

    def _require_member(self, pool_id: str) -> None:
        if self.pool_id != pool_id:
            raise ConflictError(f"worker {self.id} is not a member of pool {pool_id}", worker_id=self.id,
                                pool_id=pool_id)

    def resume_for_pool(self, pool_id: str, now: datetime, by: str) -> list[DomainEvent]:
        """The pool needs this member again: one still up ends its drain (even one that has already asked for
        the stop: the pool wants it running), and any is wanted running."""
        self._require_member(pool_id)
        found: list[DomainEvent] = []
        if self.park_when_ready:
            # Out of the warm pool: from now on an ordinary member, licensed once its CML is up.
            self.park_when_ready = False
            self.license.register_when_available = True
            self._record("park_when_ready", "true", "false", now, f"resumed by {by}", by)
        if self.drain is not None and self.status in DRAINABLE:
            found += self.end_drain(now, by)
        return found + self.request_desired_status(DesiredStatus.RUNNING, now, by, reason=f"resumed by {by}")

    def retire_from_pool(self, pool_id: str, then: DesiredStatus, now: datetime, by: str) -> list[DomainEvent]:
        """The pool no longer needs this member: a running one is drained (its sessions end on their own) and
        goes on to `then` (stopped or terminated); one without an instance yet is terminated (there is nothing
        to stop); any other is sent to `then` at once."""
        self._require_member(pool_id)
        # A warmed-up worker is stopped into the warm pool it was launched for (the cost ledger tells the two
        # apart: only a retirement saves what running would have cost).
        reason = f"stopped into the warm pool of {by}" if self.park_when_ready else f"retired by {by}"
        if self.status in DRAINABLE:
            return self.request_drain(then, now, by, reason, pool_id=pool_id)
        if self.aws_instance_id is None:
            return self.request_desired_status(DesiredStatus.TERMINATED, now, by, reason)
        return self.request_desired_status(then, now, by, reason)
