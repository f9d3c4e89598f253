"""The fleet as it is, as one event: what a new event-stream client gets before the live events."""

from __future__ import annotations

from collections.abc import Iterable

from control_plane_api.application.ports import WorkersByIds
from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent


class FleetSnapshots:
    def __init__(self, workers: WorkersByIds) -> None:
        self._workers = workers

    async def snapshot(self, worker_ids: Iterable[str] = ()) -> DomainEvent:
        """`worker.snapshot` of the given workers (every worker when none is given)."""
        workers = await self._workers(sorted(worker_ids))
        return DomainEvent(type=ev.WORKER_SNAPSHOT, data={"workers": [w.summary() for w in workers],
                                                          "count": len(workers)})
