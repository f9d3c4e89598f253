"""Public worker routes: viewers read, admins act. Actions record intent; the worker-controller acts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.api.lablet_views import csv_filter, enum_filter
from control_plane_api.api.responses import Answers
from control_plane_api.api.security import CP, Admin, Viewer
from control_plane_api.api.views import Page, WorkerDetail, summary_page, worker_detail
from control_plane_api.domain.metric_history import MetricSample
from control_plane_api.domain.worker_query import SORTABLE, WorkerQuery
from lcm_core.domain.enums import DesiredStatus, HealthStatus, WorkerStatus
from lcm_core.domain.lablets import TrackName
from lcm_core.domain.types import AWS_REGION_RE, AwsRegion, Flag, Label, Number, Text
from lcm_core.domain.workers import IdleState, WorkerSummary

router = APIRouter(prefix="/api/workers", tags=["workers"])


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text | None = Field(default=None, max_length=500)


class CreateWorker(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    aws_region: AwsRegion
    name: Label | None = None
    idempotency_key: Label | None = Field(default=None, max_length=128)
    """Repeat the request with the same key and the same worker is returned (no second instance)."""


class LabTrackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lab_track: TrackName | None
    """The lab track this worker serves (null: any)."""


class IdleDetectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: Flag


# Filters that name only what exists: an unknown status or region is refused (422), not matched against nothing.
if TYPE_CHECKING:
    # `enum_filter`/`csv_filter` build the annotation at run time (validation and the API's document); a type
    # checker cannot follow that, and sees what the parameter holds: the values given, or None.
    WorkerStatuses = list[str] | None
    HealthStatuses = list[str] | None
    AwsRegions = list[str] | None
else:
    WorkerStatuses = enum_filter(WorkerStatus, "worker status", "Statuses, comma-separated or repeated")
    HealthStatuses = enum_filter(HealthStatus, "health status", "Health statuses, comma-separated or repeated")
    AwsRegions = csv_filter(AWS_REGION_RE, "AWS region", "AWS regions look like us-east-1",
                            "AWS regions, comma-separated or repeated")


def _csv(values: list[str] | None) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v]


@router.get("", summary="List workers with filters and paging")
async def list_workers(
    cp: CP, _who: Viewer,
    status: WorkerStatuses = None,
    aws_region: AwsRegions = None,
    health_status: HealthStatuses = None,
    q: Annotated[str | None, Query(max_length=100, description="Search name, instance id, IPs")] = None,
    include_terminated: bool = True,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: Annotated[str, Query(description=f"One of: {', '.join(sorted(SORTABLE))}")] = "name",
    order: Literal["asc", "desc"] = "asc",
) -> Page[WorkerSummary]:
    """Each worker's row (`WorkerSummary`): the worker and the columns of its latest telemetry."""
    query = WorkerQuery(status=_csv(status), aws_region=_csv(aws_region), health_status=_csv(health_status),
                        search=q, include_terminated=include_terminated)
    items, telemetry, total = await cp.workers.page(query, offset=offset, limit=limit, sort=sort,
                                                    descending=order == "desc")
    return summary_page(items, telemetry, total, offset, limit)


@router.post("", status_code=201, summary="Create a worker from a template (the worker-controller provisions it)")
async def create_worker(body: CreateWorker, cp: CP, who: Admin) -> WorkerDetail:
    worker = await cp.workers.create_from_template(body.template_name, body.aws_region, body.name, by=who.subject,
                                                   idempotency_key=body.idempotency_key)
    return worker_detail(worker)


@router.get("/{worker_id}", summary="Worker detail, with its latest telemetry")
async def get_worker(worker_id: str, cp: CP, _who: Viewer) -> WorkerDetail:
    return worker_detail(*await cp.workers.detail(worker_id))


async def _desire(cp: CP, worker_id: str, desired: DesiredStatus, who: str, body: ActionBody | None) -> WorkerDetail:
    reason = (body.reason if body else None) or f"{desired.value} requested by {who}"
    return worker_detail(await cp.workers.request_desired_status(worker_id, desired, by=who, reason=reason))


Force = Annotated[bool, Query(description="End the worker's lablet sessions properly first (their labs are "
                                          "removed from CML, capacity and ports released), then go on")]
_SESSIONS_HELD: Answers = {
    409: {"description": "The worker holds live lablet sessions (named in the message): drain it or use force"}}


async def _shut_down(cp: CP, worker_id: str, desired: DesiredStatus, who: str, body: ActionBody | None,
                     force: bool) -> WorkerDetail:
    reason = (body.reason if body else None) or f"{desired.value} requested by {who}"
    return worker_detail(await cp.shutdown.shut_down(worker_id, desired, by=who, reason=reason, force=force))


@router.post("/{worker_id}/start", summary="Start (or resume) the worker")
async def start(worker_id: str, cp: CP, who: Admin, body: ActionBody | None = None) -> WorkerDetail:
    return await _desire(cp, worker_id, DesiredStatus.RUNNING, who.subject, body)


@router.post("/{worker_id}/stop", summary="Stop (pause) the worker", responses=_SESSIONS_HELD)
async def stop(worker_id: str, cp: CP, who: Admin, body: ActionBody | None = None, force: Force = False
               ) -> WorkerDetail:
    return await _shut_down(cp, worker_id, DesiredStatus.STOPPED, who.subject, body, force)


@router.post("/{worker_id}/terminate", summary="Terminate the worker's instance", responses=_SESSIONS_HELD)
async def terminate(worker_id: str, cp: CP, who: Admin, body: ActionBody | None = None, force: Force = False
                    ) -> WorkerDetail:
    return await _shut_down(cp, worker_id, DesiredStatus.TERMINATED, who.subject, body, force)


class DrainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    then: Literal["stopped", "terminated", "running"] = "stopped"
    """What the worker does once its last session has ended: stop (default), terminate, or stay running
    (drained, for maintenance, until undrained)."""
    reason: Text | None = Field(default=None, max_length=500)


@router.post("/{worker_id}/drain", summary="Drain: no new session; once the last one ends, stop/terminate/stay",
             responses={409: {"description": "The worker is not running"}})
async def drain(worker_id: str, cp: CP, who: Admin, body: DrainBody | None = None) -> WorkerDetail:
    body = body or DrainBody()
    return worker_detail(await cp.workers.drain(worker_id, DesiredStatus(body.then), by=who.subject,
                                              reason=body.reason or f"drain requested by {who.subject}"))


@router.post("/{worker_id}/undrain", summary="Cancel a drain: the worker takes sessions again",
             responses={409: {"description": "The drain has already sent the worker to stop"}})
async def undrain(worker_id: str, cp: CP, who: Admin) -> WorkerDetail:
    return worker_detail(await cp.workers.undrain(worker_id, by=who.subject))


@router.post("/{worker_id}/refresh", summary="Ask the controller to reconcile and collect now")
async def refresh(worker_id: str, cp: CP, who: Admin) -> WorkerDetail:
    return worker_detail(await cp.workers.request_refresh(worker_id, by=who.subject))


@router.put("/{worker_id}/idle-detection", summary="Enable or disable idle detection for this worker")
async def idle_detection(worker_id: str, body: IdleDetectionBody, cp: CP, who: Admin) -> WorkerDetail:
    return worker_detail(await cp.workers.set_idle_detection(worker_id, body.enabled, by=who.subject))


class MetricHistory(BaseModel):
    worker_id: str
    minutes: Number
    samples: list[MetricSample]


@router.get("/{worker_id}/metrics", summary="Utilisation over time (CPU, memory, disk; CPU source labelled)")
async def metric_history(
    worker_id: str, cp: CP, _who: Viewer,
    minutes: Annotated[float, Query(gt=0, le=60 * 24 * 90, description="How far back")] = 60,
    limit: Annotated[int, Query(ge=1, le=5000, description="At most this many (the newest) samples")] = 720,
) -> MetricHistory:
    samples = await cp.workers.metric_history(worker_id, minutes, limit)
    return MetricHistory(worker_id=worker_id, minutes=minutes, samples=samples)


@router.put("/{worker_id}/lab-track", summary="Set the lab track the worker serves (scheduling preference)")
async def lab_track(worker_id: str, body: LabTrackBody, cp: CP, who: Admin) -> WorkerDetail:
    return worker_detail(await cp.workers.set_lab_track(worker_id, body.lab_track, by=who.subject))


class IdleView(BaseModel):
    """What idle detection last concluded about a worker, and the operator's side of auto-pause."""

    worker_id: str
    status: WorkerStatus
    desired_status: DesiredStatus | None
    idle_detection_enabled: bool
    last_activity_at: datetime | None
    idle: IdleState
    pause_reason: str | None
    paused_at: datetime | None
    resumed_at: datetime | None


@router.get("/{worker_id}/idle", summary="Idle-detection state of a worker")
async def idle_state(worker_id: str, cp: CP, _who: Viewer) -> IdleView:
    worker, telemetry = await cp.workers.detail(worker_id)
    a = worker.activity
    return IdleView(worker_id=worker.id, status=worker.status, desired_status=worker.desired_status,
                    idle_detection_enabled=a.idle_detection_enabled,
                    last_activity_at=telemetry.last_activity_at if telemetry else None,
                    idle=telemetry.idle if telemetry else IdleState(), pause_reason=a.pause_reason,
                    paused_at=a.paused_at, resumed_at=a.resumed_at)


@router.post("/{worker_id}/license/{action}", summary="Request licence registration or deregistration")
async def license_request(worker_id: str, action: Literal["register", "deregister"], cp: CP,
                          who: Admin) -> WorkerDetail:
    return worker_detail(await cp.workers.request_license(worker_id, action, by=who.subject))
