"""Internal REST API called by the controllers (`X-API-Key`; mutations fenced by the leader epoch)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from control_plane_api.api.security import CP, Internal, Leader
from control_plane_api.api.views import WorkerPage, controller_view, worker_page, worker_view
from control_plane_api.api.workers import AwsRegions, WorkerStatuses
from control_plane_api.domain.reports import DiscoveredInstance, LicenseProgress, MetricsReport, StatusReport
from control_plane_api.domain.system_settings import SystemSettings, WorkerTemplate
from control_plane_api.infrastructure.mongo_workers import WorkerQuery
from lcm_core.domain.types import (
    STORABLE_KEY_PATTERN,
    Count,
    Flag,
    Instant,
    Integer,
    JsonObject,
    Label,
    Number,
    StorableJson,
    Text,
    storable_json,
)

router = APIRouter(prefix="/api/internal", tags=["internal"])

MAX_BATCH = 5000
MAX_SEEN = 100_000
"""Instance ids one inventory check may name: a whole fleet's, which can outgrow an import batch."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BulkImport(_Body):
    instances: list[DiscoveredInstance] = Field(max_length=MAX_BATCH)
    source: Annotated[Label, Field(max_length=100)] = "worker-controller-discovery"


class ImportOutcome(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    workers: list[dict[str, Any]]
    """Every imported instance's worker as the controller sees it (`controller_view`): a discovery measures
    them without reading the worker list."""


class SeenInstances(_Body):
    aws_instance_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=MAX_SEEN)


class WorkerList(BaseModel):
    items: list[dict[str, Any]]


class WorkerMetrics(_Body):
    worker_id: Annotated[Label, Field(min_length=1, max_length=64)]
    metrics: MetricsReport


class MetricsBatch(_Body):
    reports: list[WorkerMetrics] = Field(max_length=MAX_BATCH)


class BatchOutcome(BaseModel):
    updated: list[str]
    not_found: list[str]
    retried: Integer


class LoopReport(BaseModel):
    """Seed 001's per-loop figures; loop-specific extras are kept as they are (checked to be storable)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False,
                              json_schema_extra={"propertyNames": {"pattern": STORABLE_KEY_PATTERN}})
    # The extras are typed so that the API's document says what `storable_json` checks of them.
    __pydantic_extra__: dict[str, StorableJson] = Field(init=False)

    @model_validator(mode="after")
    def _storable_extras(self) -> LoopReport:
        storable_json(self.model_extra or {})
        return self

    name: Annotated[Label, Field(max_length=100)]
    running: Flag = False
    interval_seconds: Number | None = None
    runs: Count = 0
    successes: Count = 0
    failures: Count = 0
    success_rate: Number | None = Field(default=None, ge=0, le=100)
    last_run: Instant | None = None
    last_duration_seconds: Number | None = Field(default=None, ge=0)
    last_error: Text | None = Field(default=None, max_length=2000)


class ControllerStatusReport(_Body):
    service: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9-]*$")
    identity: Annotated[Label, Field(min_length=1, max_length=200)]
    is_leader: Flag
    epoch: Count | None = None
    terms: Count = 0
    fenced_actions: Count = 0
    """Fleet changes this replica refused because its lease was too close to its end (`LeaseFence`)."""
    report_interval_seconds: Number | None = Field(default=None, ge=0, le=86_400)
    """How often this replica reports: the status page calls it stale after two intervals without a report.
    None (a replica that does not say): the controllers' default is assumed."""
    etcd_reachable: Flag = True
    last_error: Text | None = Field(default=None, max_length=2000)
    started_at: Instant | None = None
    loops: list[LoopReport] = Field(default_factory=list, max_length=50)
    summary: JsonObject = Field(default_factory=dict)
    """Loop-specific figures (e.g. workers per health status) shown as they are."""


def _csv(values: list[str] | None) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v]


@router.get("/workers", summary="List workers (controllers' view)")
async def list_workers(
    cp: CP, _caller: Internal,
    status: WorkerStatuses = None,
    aws_region: AwsRegions = None,
    include_terminated: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 5000,
    view: Annotated[Literal["full", "brief"], Query(description="brief: without telemetry, history, alerts")]
    = "full",
) -> WorkerPage:
    query = WorkerQuery(status=_csv(status), aws_region=_csv(aws_region), include_terminated=include_terminated)
    items, total = await cp.workers.workers.page(query, skip=offset, limit=limit, brief=view == "brief")
    return worker_page(items, total, offset, limit)


@router.get("/workers/{worker_id}", summary="One worker")
async def get_worker(worker_id: str, cp: CP, _caller: Internal) -> dict[str, Any]:
    return worker_view(await cp.workers.workers.get(worker_id))


@router.post("/workers/bulk-import", summary="Import discovered instances (idempotent by instance id)")
async def bulk_import(body: BulkImport, cp: CP, caller: Leader) -> ImportOutcome:
    result = await cp.workers.bulk_import(body.instances, by=f"{body.source} ({caller.by})", leader=caller)
    return ImportOutcome(created=result.created, updated=result.updated, unchanged=result.unchanged,
                         workers=[controller_view(w) for w in result.workers.values()])


@router.post("/workers/unseen", summary="Workers whose instance a discovery did not see (an inventory check)")
async def unseen_workers(body: SeenInstances, cp: CP, _caller: Internal) -> WorkerList:
    """Every worker with an instance, not terminated, whose instance id is not in the body: after a discovery
    the orphan suspects and the workers outside the scanned regions, without reading the whole fleet."""
    return WorkerList(items=[controller_view(w) for w in await cp.workers.workers.unseen(body.aws_instance_ids)])


@router.post("/workers/metrics:batch", summary="Metrics of many workers in one call")
async def metrics_batch(body: MetricsBatch, cp: CP, caller: Leader) -> BatchOutcome:
    reports = {r.worker_id: r.metrics for r in body.reports}
    result = await cp.workers.update_metrics_batch(reports, by=caller.by, leader=caller)
    return BatchOutcome(updated=result.updated, not_found=result.not_found, retried=result.retried)


@router.post("/workers/{worker_id}/status", summary="EC2 state observed by the controller")
async def update_status(worker_id: str, body: StatusReport, cp: CP, caller: Leader) -> dict[str, Any]:
    return worker_view(await cp.workers.update_status(worker_id, body, by=caller.by, leader=caller))


@router.post("/workers/{worker_id}/metrics", summary="One worker's metrics cycle")
async def update_metrics(worker_id: str, body: MetricsReport, cp: CP, caller: Leader) -> dict[str, Any]:
    return worker_view(await cp.workers.update_metrics(worker_id, body, by=caller.by, leader=caller))


@router.post("/workers/{worker_id}/detect-idle", summary="Run idle detection (may request an auto-pause)")
async def detect_idle(worker_id: str, cp: CP, caller: Leader) -> dict[str, Any]:
    return (await cp.workers.detect_idle(worker_id, by=caller.by, leader=caller)).idle_view()


@router.post("/workers/{worker_id}/license", summary="Progress of a licence request")
async def license_progress(worker_id: str, body: LicenseProgress, cp: CP, caller: Leader) -> dict[str, Any]:
    return worker_view(await cp.workers.license_progress(worker_id, body, by=caller.by, leader=caller))


@router.post("/workers/{worker_id}/provisioned", summary="The instance provisioned for a worker (idempotent)")
async def provisioned(worker_id: str, body: DiscoveredInstance, cp: CP, caller: Leader) -> dict[str, Any]:
    return worker_view(await cp.workers.attach_instance(worker_id, body, by=caller.by, leader=caller))


@router.get("/templates/{name}", summary="A worker template (for provisioning)")
async def template(name: str, cp: CP, _caller: Internal) -> WorkerTemplate:
    return await cp.templates.repo.get(name)


@router.get("/settings", summary="System settings (controllers re-read them every cycle)")
async def read_settings(cp: CP, _caller: Internal) -> SystemSettings:
    return await cp.system_settings.get()


@router.post("/controllers/status", status_code=204, summary="A controller replica's leadership and loop stats")
async def controller_status(body: ControllerStatusReport, cp: CP, _caller: Internal) -> None:
    # Followers report too (they are not fenced): the status page shows every replica.
    await cp.controllers.record(body.model_dump(mode="json"))
