"""Public worker-pool routes (docs/pools.md): viewers read; admins create, change, scale, drain, delete, and give
workers to a pool or take them out. Bodies and views are the shared contract (`lcm_core.domain.pools`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from control_plane_api.api.security import CP, Admin, Viewer
from control_plane_api.api.views import Page
from control_plane_api.application.pool_demand import MAX_FORECAST_HOURS
from lcm_core.domain.pools import PoolForecast, PoolSpec, PoolView, ScaleRequest, ScalingDecision
from lcm_core.domain.types import Count
from lcm_core.domain.workers import WorkerSummary

router = APIRouter(prefix="/api/pools", tags=["pools"])

PoolId = Annotated[str, Path(min_length=1, max_length=128, description="The pool's id")]
WorkerId = Annotated[str, Path(min_length=1, max_length=128, description="The worker's id")]


class PoolDetail(BaseModel):
    pool: PoolView
    workers: list[WorkerSummary]
    """The pool's workers that are not terminated (their rows, as the worker list shows them)."""


class PoolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: PoolSpec
    """The whole spec: it replaces the stored one."""
    spec_version: Count
    """The pool's `spec_version` read: another change of the spec since makes this a 409 (the autoscaler's
    reports do not move it)."""


@router.get("", summary="Worker pools (by name)")
async def list_pools(
    cp: CP, _who: Viewer,
    include_terminated: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Page[PoolView]:
    pools, total = await cp.pools.page(include_terminated, offset, limit)
    return Page[PoolView](items=[p.view() for p in pools], total=total, offset=offset, limit=limit)


@router.post("", status_code=201, summary="Create a pool (409 when its name or lab track is taken)")
async def create_pool(body: PoolSpec, cp: CP, who: Admin) -> PoolView:
    return (await cp.pools.create(body, by=who.subject)).view()


@router.get("/{pool_id}", summary="A pool and its workers")
async def get_pool(pool_id: PoolId, cp: CP, _who: Viewer) -> PoolDetail:
    pool, workers = await cp.pools.detail(pool_id)
    return PoolDetail(pool=pool.view(), workers=workers)


@router.put("/{pool_id}", summary="Replace a pool's spec (version-guarded)")
async def put_pool(pool_id: PoolId, body: PoolUpdate, cp: CP, who: Admin) -> PoolView:
    return (await cp.pools.update(pool_id, body.spec, body.spec_version, by=who.subject)).view()


@router.post("/{pool_id}/scale", summary="Hold the pool at a number of workers (within its bounds)")
async def scale_pool(pool_id: PoolId, body: ScaleRequest, cp: CP, who: Admin) -> PoolView:
    return (await cp.pools.scale(pool_id, body, by=who.subject)).view()


@router.post("/{pool_id}/drain", summary="Drain: no new session on its workers, no scaling; they stop once empty")
async def drain_pool(pool_id: PoolId, cp: CP, who: Admin) -> PoolView:
    return (await cp.pools.drain(pool_id, by=who.subject)).view()


@router.post("/{pool_id}/undrain", summary="Cancel a drain: the pool scales and takes sessions again")
async def undrain_pool(pool_id: PoolId, cp: CP, who: Admin) -> PoolView:
    return (await cp.pools.undrain(pool_id, by=who.subject)).view()


@router.delete("/{pool_id}", status_code=202,
               summary="Delete: its workers are drained and terminated, then the pool is (idempotent)")
async def delete_pool(pool_id: PoolId, cp: CP, who: Admin) -> PoolView:
    return (await cp.pools.delete(pool_id, by=who.subject)).view()


@router.get("/{pool_id}/history", summary="The pool's scaling decisions, newest first")
async def pool_history(pool_id: PoolId, cp: CP, _who: Viewer) -> list[ScalingDecision]:
    return await cp.pools.history(pool_id)


@router.get("/{pool_id}/forecast", summary="The pool's booked demand over the next hours, against its workers")
async def pool_forecast(
    pool_id: PoolId, cp: CP, _who: Viewer,
    hours: Annotated[float | None, Query(ge=1, le=MAX_FORECAST_HOURS,
                                         description="How far ahead (default: the pool's look-ahead)")] = None,
) -> PoolForecast:
    return await cp.pools.forecast(pool_id, hours)


@router.post("/{pool_id}/workers/{worker_id}", summary="Give an existing worker to the pool (it serves its track)")
async def adopt_worker(pool_id: PoolId, worker_id: WorkerId, cp: CP, who: Admin) -> PoolDetail:
    pool = await cp.pools.adopt(pool_id, worker_id, by=who.subject)
    return PoolDetail(pool=pool.view(), workers=(await cp.pools.detail(pool.id))[1])


@router.delete("/{pool_id}/workers/{worker_id}", summary="Take a worker out of the pool (idempotent)")
async def release_worker(pool_id: PoolId, worker_id: WorkerId, cp: CP, who: Admin) -> PoolDetail:
    pool = await cp.pools.release(pool_id, worker_id, by=who.subject)
    return PoolDetail(pool=pool.view(), workers=(await cp.pools.detail(pool.id))[1])
