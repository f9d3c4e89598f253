"""JSON shapes of workers on the wire (public and internal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from control_plane_api.domain.worker import Worker


class WorkerPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


def worker_view(worker: Worker) -> dict[str, Any]:
    """The full aggregate plus its lifecycle phase (a derived view; docs/architecture.md, 'Domain model')."""
    return worker.model_dump(mode="json", by_alias=True) | {"phase": worker.lifecycle_phase,
                                                            "labs_count": worker.telemetry.labs_count,
                                                            "sessions": len(worker.capacity.reservations)}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def controller_view(worker: Worker) -> dict[str, Any]:
    """What the worker-controller decides from (its `WorkerView`): identity, addresses, observed and desired
    state, licence progress and the version, without telemetry or history. The reply of discovery's imports
    and inventory checks: built field by field because it goes out for every worker of every discovery."""
    return {
        "id": worker.id, "name": worker.name, "aws_region": worker.aws_region,
        "aws_instance_id": worker.aws_instance_id, "template_name": worker.template_name,
        "status": worker.status.value, "status_changed_at": _iso(worker.status_changed_at),
        "desired_status": worker.desired_status, "sessions": len(worker.capacity.reservations),
        "desired_changed_at": _iso(worker.desired_changed_at), "service_status": worker.service_status.value,
        "cml_version": worker.cml_version, "health_status": worker.health_status.value,
        "private_ip": worker.private_ip, "public_ip": worker.public_ip,
        "license": {"status": worker.license.status.value, "pending_action": worker.license.pending_action},
        "activity": {"idle_detection_enabled": worker.activity.idle_detection_enabled},
        "refresh_requested_at": _iso(worker.refresh_requested_at), "version": worker.version,
    }


def worker_page(items: Sequence[Worker], total: int, offset: int, limit: int) -> WorkerPage:
    return WorkerPage(items=[worker_view(w) for w in items], total=total, offset=offset, limit=limit)
