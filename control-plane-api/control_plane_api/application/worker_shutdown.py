"""Stopping, terminating and draining workers without killing students' labs.

A plain stop or terminate of a worker that holds sessions is refused (409 naming them). Drain lets the
sessions finish; a forced stop drains the worker first (so nothing new lands on it) and then asks every
session on it to end properly: the lablet-controller removes each lab from CML and the session's capacity
and ports are released, and the release of the last one sends the drained worker on to stop or terminate.
"""

from __future__ import annotations

import logging
from typing import Protocol

from control_plane_api.application.workers import WorkerService
from control_plane_api.domain.worker import Worker
from lcm_core.domain.enums import DesiredStatus
from lcm_core.errors import NotFoundError

logger = logging.getLogger(__name__)


class SessionEnder(Protocol):
    """Ends one lablet session properly (its lab torn down, its capacity released)."""

    async def terminate(self, session_id: str, by: str, reason: str | None) -> object: ...


class WorkerShutdown:
    def __init__(self, workers: WorkerService, sessions: SessionEnder) -> None:
        self._workers = workers
        self._sessions = sessions

    async def shut_down(self, worker_id: str, desired: DesiredStatus, by: str, reason: str | None,
                        *, force: bool = False) -> Worker:
        """`desired` is stopped or terminated. Without `force`, refused while sessions are held."""
        if not force:
            return await self._workers.request_desired_status(worker_id, desired, by=by, reason=reason)
        worker = await self._workers.get(worker_id)
        sessions = worker.live_sessions
        if not sessions:
            return await self._workers.request_desired_status(worker_id, desired, by=by, reason=reason)
        verb = "stopped" if desired is DesiredStatus.STOPPED else "terminated"
        await self._workers.drain(worker_id, desired, by=by, reason=reason or f"forced {desired.value} by {by}")
        for session_id in sessions:
            try:
                await self._sessions.terminate(session_id, by, f"worker {worker.name} is being {verb} by {by}")
            except NotFoundError:
                logger.warning("session %s held capacity on worker %s but no longer exists", session_id, worker_id)
        return await self._workers.get(worker_id)
