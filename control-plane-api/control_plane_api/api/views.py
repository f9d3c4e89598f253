"""JSON shapes of workers on the wire (public and internal)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from control_plane_api.domain.worker import Worker


class WorkerPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def worker_view(worker: Worker) -> dict[str, Any]:
    """The full aggregate plus its seed-002 lifecycle phase (a derived view)."""
    return worker.model_dump(mode="json", by_alias=True) | {"phase": worker.lifecycle_phase,
                                                            "labs_count": worker.telemetry.labs_count}


def worker_page(items: Sequence[Worker], total: int, offset: int, limit: int) -> WorkerPage:
    return WorkerPage(items=[worker_view(w) for w in items], total=total, offset=offset, limit=limit)
