"""The fleet as it is, as one event: what a new event-stream client gets before the live events."""

from __future__ import annotations

from collections.abc import Iterable

from control_plane_api.application.ports import WorkerRows
from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.worker_query import WorkerQuery


class FleetSnapshots:
    def __init__(self, rows: WorkerRows) -> None:
        self._rows = rows

    async def snapshot(self, worker_ids: Iterable[str] = ()) -> DomainEvent:
        """`worker.snapshot`: the rows (`WorkerSummary`) of the given workers, of every worker when none is
        given."""
        rows = await self._rows(WorkerQuery(ids=sorted(worker_ids)))
        return DomainEvent(type=ev.WORKER_SNAPSHOT, data={"workers": [r.model_dump(mode="json") for r in rows],
                                                          "count": len(rows)})
