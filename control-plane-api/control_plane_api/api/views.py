"""Workers on the wire (public and internal): one typed model per view, built from the aggregate and its
telemetry by the contract's own functions (`Worker.summary`, `lcm_core.domain.workers`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

from control_plane_api.domain.worker import Worker
from lcm_core.domain.workers import LicenseView, WorkerSummary, WorkerTelemetry, WorkerView

Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    offset: int
    limit: int


class WorkerDetail(Worker):
    """The whole worker, its phase and session count (derived), its latest telemetry when asked for, and its
    row (`summary`, what the worker list shows of it)."""

    phase: str
    sessions: int
    telemetry: WorkerTelemetry | None = None
    summary: WorkerSummary


def worker_detail(worker: Worker, telemetry: WorkerTelemetry | None = None) -> WorkerDetail:
    return WorkerDetail.model_validate({**dict(worker), "phase": worker.lifecycle_phase,
                                        "sessions": len(worker.capacity.reservations), "telemetry": telemetry,
                                        "summary": worker.to_summary(telemetry)})


def controller_view(worker: Worker) -> WorkerView:
    """What the worker-controller decides from (`WorkerView`): it goes out for every worker of every
    discovery, so it is built field by field, without telemetry or history."""
    return WorkerView(
        id=worker.id, name=worker.name, aws_region=worker.aws_region, aws_instance_id=worker.aws_instance_id,
        template_name=worker.template_name, status=worker.status, status_changed_at=worker.status_changed_at,
        desired_status=worker.desired_status, desired_changed_at=worker.desired_changed_at,
        service_status=worker.service_status, cml_version=worker.cml_version,
        health_status=worker.health_status.value, private_ip=worker.private_ip, public_ip=worker.public_ip,
        license=LicenseView(status=worker.license.status, pending_action=worker.license.pending_action),
        refresh_requested_at=worker.refresh_requested_at, sessions=len(worker.capacity.reservations),
        version=worker.version)


def summary_page(workers: Sequence[Worker], telemetry: Mapping[str, WorkerTelemetry], total: int, offset: int,
                 limit: int) -> Page[WorkerSummary]:
    return Page[WorkerSummary](items=[w.to_summary(telemetry.get(w.id)) for w in workers], total=total,
                               offset=offset, limit=limit)
