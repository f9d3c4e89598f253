"""Internal REST API called by the controllers (`X-API-Key`; mutations fenced by the leader epoch)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from control_plane_api.api.security import CP, Internal, Leader
from control_plane_api.api.views import Page, WorkerDetail, controller_view, summary_page, worker_detail
from control_plane_api.api.workers import AwsRegions, WorkerStatuses
from control_plane_api.domain.reports import DiscoveredInstance, LicenseProgress, StatusReport
from control_plane_api.domain.system_settings import SystemSettings, WorkerTemplate
from control_plane_api.domain.worker_query import WorkerQuery
from lcm_core.domain.types import (
    STORABLE_KEY_PATTERN,
    Count,
    Flag,
    Instant,
    JsonObject,
    Label,
    Number,
    StorableJson,
    Text,
    storable_json,
)
from lcm_core.domain.worker_launch import LaunchFailureReport
from lcm_core.domain.workers import MetricsBatch, MetricsBatchOutcome, WorkerSummary, WorkerView

router = APIRouter(prefix="/api/internal", tags=["internal"])

MAX_BATCH = 5000
"""Instances one import may carry."""
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
    workers: list[WorkerView]
    """Every imported instance's worker as the controller sees it (`controller_view`): a discovery measures
    them without reading the worker list."""


class SeenInstances(_Body):
    aws_instance_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=MAX_SEEN)


class WorkerList(BaseModel):
    items: list[WorkerView]


class LoopReport(BaseModel):
    """A loop's figures (`LoopStats`); loop-specific extras are kept as they are (checked to be storable)."""

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
    consecutive_failures: Count = 0
    success_rate: Number | None = Field(default=None, ge=0, le=100)
    last_run: Instant | None = None
    last_success: Instant | None = None
    last_duration_seconds: Number | None = Field(default=None, ge=0)
    last_error: Text | None = Field(default=None, max_length=2000)
    started: Instant | None = None
    """When the loop began running on this replica (it became leader)."""


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


@router.get("/workers", summary="List workers (controllers' views)")
async def list_workers(
    cp: CP, _caller: Internal,
    status: WorkerStatuses = None,
    aws_region: AwsRegions = None,
    include_terminated: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 5000,
    view: Annotated[Literal["brief", "controller"], Query(
        description="brief: each worker's row (`WorkerSummary`, what the scheduler places from); controller: "
                    "what the worker-controller decides from (`WorkerView`)")] = "brief",
) -> Page[WorkerSummary] | Page[WorkerView]:
    query = WorkerQuery(status=_csv(status), aws_region=_csv(aws_region), include_terminated=include_terminated)
    if view == "controller":
        workers, total = await cp.workers.controller_page(query, offset=offset, limit=limit)
        return Page[WorkerView](items=[controller_view(w) for w in workers], total=total, offset=offset, limit=limit)
    items, telemetry, total = await cp.workers.page(query, offset=offset, limit=limit)
    return summary_page(items, telemetry, total, offset, limit)


@router.get("/workers/{worker_id}", summary="One worker")
async def get_worker(worker_id: str, cp: CP, _caller: Internal) -> WorkerDetail:
    return worker_detail(*await cp.workers.detail(worker_id))


@router.post("/workers/bulk-import", summary="Import discovered instances (idempotent by instance id)")
async def bulk_import(body: BulkImport, cp: CP, caller: Leader) -> ImportOutcome:
    result = await cp.workers.bulk_import(body.instances, by=f"{body.source} ({caller.by})", leader=caller)
    return ImportOutcome(created=result.created, updated=result.updated, unchanged=result.unchanged,
                         workers=[controller_view(w) for w in result.workers.values()])


@router.post("/workers/unseen", summary="Workers whose instance a discovery did not see (an inventory check)")
async def unseen_workers(body: SeenInstances, cp: CP, _caller: Internal) -> WorkerList:
    """Every worker with an instance, not terminated, whose instance id is not in the body: after a discovery
    the orphan suspects and the workers outside the scanned regions, without reading the whole fleet."""
    return WorkerList(items=[controller_view(w) for w in await cp.workers.unseen(body.aws_instance_ids)])


@router.post("/workers/metrics:batch", summary="Metrics of many workers in one call (idleness judged too)")
async def metrics_batch(body: MetricsBatch, cp: CP, caller: Leader) -> MetricsBatchOutcome:
    return await cp.workers.update_metrics_batch(body.reports, by=caller.by, leader=caller)


@router.post("/workers/{worker_id}/status", summary="EC2 state observed by the controller")
async def update_status(worker_id: str, body: StatusReport, cp: CP, caller: Leader) -> WorkerView:
    return controller_view(await cp.workers.update_status(worker_id, body, by=caller.by, leader=caller))


@router.post("/workers/{worker_id}/license", summary="Progress of a licence request")
async def license_progress(worker_id: str, body: LicenseProgress, cp: CP, caller: Leader) -> WorkerView:
    return controller_view(await cp.workers.license_progress(worker_id, body, by=caller.by, leader=caller))


@router.post("/workers/{worker_id}/provisioned", summary="The instance provisioned for a worker (idempotent)")
async def provisioned(worker_id: str, body: DiscoveredInstance, cp: CP, caller: Leader) -> WorkerView:
    return controller_view(await cp.workers.attach_instance(worker_id, body, by=caller.by, leader=caller))


@router.post("/workers/{worker_id}/launch-failed", summary="A failed attempt to launch a worker's instance")
async def launch_failed(worker_id: str, body: LaunchFailureReport, cp: CP, caller: Leader) -> WorkerView:
    """Counted on the worker (`launch_failure`) until its instance is attached; its pool fails while it keeps
    failing (docs/pools.md)."""
    return controller_view(await cp.workers.record_launch_failure(worker_id, body, by=caller.by, leader=caller))


@router.get("/templates/{name}", summary="A worker template (for provisioning)")
async def template(name: str, cp: CP, _caller: Internal) -> WorkerTemplate:
    return await cp.templates.get(name)


@router.get("/settings", summary="System settings (controllers re-read them every cycle)")
async def read_settings(cp: CP, _caller: Internal) -> SystemSettings:
    return await cp.system_settings.get()


@router.post("/controllers/status", status_code=204, summary="A controller replica's leadership and loop stats")
async def controller_status(body: ControllerStatusReport, cp: CP, _caller: Internal) -> None:
    # Followers report too (they are not fenced): the status page shows every replica.
    await cp.controllers.record(body.model_dump(mode="json"))
