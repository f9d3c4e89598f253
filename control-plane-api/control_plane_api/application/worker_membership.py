"""A worker's membership of a pool (a mixin of `WorkerService`, as `WorkerMetrics` is): joining and leaving
it, following its track, and what the pool asks of its members (resume, retire, recall). The rules are the
worker's (`domain/worker_membership.py`); here they are applied under the worker's version check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from control_plane_api.application import versioned
from control_plane_api.application.worker_metrics import worker_fingerprint
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_query import WorkerQuery
from lcm_core.domain.enums import DesiredStatus
from lcm_core.domain.workers import WorkerSummary

if TYPE_CHECKING:
    from control_plane_api.application.ports import WorkerStore

Change = Callable[[Worker, datetime], list[DomainEvent]]


class PoolMembers:
    """Behaviour only: `WorkerService` supplies the store, the clock and the helpers named below."""

    if TYPE_CHECKING:
        _store: WorkerStore
        _clock: Callable[[], datetime]
        _max_attempts: int

        async def _after_commit(self, worker: Worker, events: list[DomainEvent]) -> None: ...
        async def summaries(self, query: WorkerQuery) -> list[WorkerSummary]: ...
        async def mutate(self, worker_id: str, change: Change, attempts: int | None = None,
                         leader: LeaderCaller | None = None) -> Worker: ...

    async def members(self, pool_id: str) -> list[WorkerSummary]:
        """The rows of a pool's workers that are not terminated (with their telemetry columns)."""
        return await self.summaries(WorkerQuery(pool_id=pool_id, include_terminated=False))

    async def join_pool(self, worker_id: str, pool_id: str, lab_track: str, by: str) -> tuple[Worker, bool]:
        """(worker, changed): the worker is a member of the pool and serves its track."""
        done = await versioned.mutate(self._store, worker_id, lambda w, now: w.join_pool(pool_id, lab_track, now, by),
                                      clock=self._clock, attempts=self._max_attempts,
                                      after_commit=self._after_commit, fingerprint=worker_fingerprint)
        return done.aggregate, done.written

    async def leave_pool(self, worker_id: str, pool_id: str, pool_track: str, by: str,
                         restore_track: str | None = None) -> tuple[Worker, bool]:
        """(worker, changed): the worker left the pool (its track cleared when it was the pool's, or restored)."""
        done = await versioned.mutate(
            self._store, worker_id, lambda w, now: w.leave_pool(pool_id, pool_track, now, by, restore_track),
            clock=self._clock, attempts=self._max_attempts, after_commit=self._after_commit,
            fingerprint=worker_fingerprint)
        return done.aggregate, done.written

    async def follow_pool_track(self, worker_id: str, pool_id: str, lab_track: str, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.follow_pool_track(pool_id, lab_track, now, by))

    async def resume_member(self, worker_id: str, pool_id: str, by: str,
                            leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.resume_for_pool(pool_id, now, by), leader=leader)

    async def retire_member(self, worker_id: str, pool_id: str, then: DesiredStatus, by: str,
                            leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.retire_from_pool(pool_id, then, now, by), leader=leader)

    async def recall_member(self, worker_id: str, pool_id: str, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.recall_to_pool(pool_id, now, by))
