"""Reservations of lablet sessions on workers, through the worker use case's version-checked change
(`ports.WorkerChanges`, i.e. `WorkerService.mutate`).

`reserve` and `release` are keyed by session id (idempotent). `release_orphans` gives back what a crash
between the worker write and the session write left behind: a reservation whose session does not hold
capacity on that worker, once it is older than a grace period (so an in-flight schedule is never undone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from control_plane_api.application.ports import ReservationHolders, ReservedWorkers, WorkerChanges
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_capacity import PortRange, record_drift, release, reserve
from lcm_core.domain.lablets import PortSpec, ResourceRequirements
from lcm_core.errors import NotFoundError

logger = logging.getLogger(__name__)


class CapacityLedger:
    def __init__(self, workers: WorkerChanges, reserved: ReservedWorkers, sessions: ReservationHolders,
                 ports: PortRange, attempts: int = 25, orphan_grace_seconds: float = 120.0,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._workers = workers
        self._reserved = reserved
        self._sessions = sessions
        self.ports = ports
        self._attempts = attempts
        self._grace = timedelta(seconds=orphan_grace_seconds)
        self._clock = clock

    async def reserve(self, worker_id: str, session_id: str, needs: ResourceRequirements,
                      template: list[PortSpec], session_version: int, leader: LeaderCaller | None = None
                      ) -> dict[str, int]:
        """The session's ports on the worker (the same ones when it already holds a reservation there).
        Raises ConflictError when the worker cannot take it or the race was lost `attempts` times."""
        chosen: dict[str, int] = {}

        def change(worker: Worker, now: datetime) -> list[DomainEvent]:
            ports, events = reserve(worker, session_id, needs, template, self.ports, now, session_version)
            chosen.clear()
            chosen.update(ports)
            return events

        await self._workers.mutate(worker_id, change, attempts=self._attempts, leader=leader)
        return dict(chosen)

    async def release(self, worker_id: str | None, session_id: str, leader: LeaderCaller | None = None) -> None:
        if worker_id is None:
            return
        try:
            # A drained worker goes on to stop (or terminate) when its last session gives its capacity back.
            await self._workers.mutate(worker_id, lambda w, now: release(w, session_id)
                                       + w.settle_drain(now, "capacity-ledger"), attempts=self._attempts,
                                       leader=leader)
        except NotFoundError:
            logger.warning("worker %s of session %s is gone; nothing to release", worker_id, session_id)

    async def record_drift(self, worker_id: str, session_id: str, drifted: dict[str, int],
                           leader: LeaderCaller | None = None) -> None:
        try:
            await self._workers.mutate(worker_id, lambda w, _now: record_drift(w, session_id, drifted),
                                       attempts=self._attempts, leader=leader)
        except NotFoundError:
            logger.warning("worker %s of session %s is gone; drift not recorded on it", worker_id, session_id)

    async def release_orphans(self) -> int:
        """Release reservations whose session no longer holds capacity on that worker (after the grace)."""
        released = 0
        cutoff = self._clock() - self._grace
        for worker in await self._reserved.with_reservations():
            old = {sid: r for sid, r in worker.capacity.reservations.items()
                   if r.reserved_at is None or r.reserved_at <= cutoff}
            if not old:
                continue
            holding = await self._sessions.holding_on(list(old))
            for session_id in old:
                if holding.get(session_id) != worker.id:
                    logger.warning("releasing orphaned reservation of session %s on worker %s", session_id, worker.id)
                    await self.release(worker.id, session_id)
                    released += 1
        return released
