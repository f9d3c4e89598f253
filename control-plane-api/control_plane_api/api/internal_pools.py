"""Internal worker-pool routes for the worker-controller's autoscaler (`X-API-Key`; its evaluations are fenced by
the worker-controller leader's epoch). Bodies and views are the shared contract (`lcm_core.domain.pools`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from control_plane_api.api.security import CP, Internal, Leader
from lcm_core.domain.pools import PoolEvaluation, PoolView, PoolWork

router = APIRouter(prefix="/api/internal/pools", tags=["internal-pools"])

PoolId = Annotated[str, Path(min_length=1, max_length=128, description="The pool's id")]


class PoolList(BaseModel):
    items: list[PoolView]


@router.get("", summary="The pools that are not terminated (what the autoscaler evaluates)")
async def list_pools(cp: CP, _caller: Internal) -> PoolList:
    return PoolList(items=[p.view() for p in await cp.pools.live()])


@router.get("/{pool_id}", summary="What the autoscaler decides from: the pool, its workers, what waits for it")
async def pool_work(pool_id: PoolId, cp: CP, _caller: Internal) -> PoolWork:
    return await cp.pools.work(pool_id)


@router.post("/{pool_id}/evaluation",
             summary="Record an evaluation of the pool and launch, resume and retire its workers as it says",
             responses={409: {"description": "The pool changed since the evaluated version, or the caller no "
                                             "longer leads"}})
async def evaluation(pool_id: PoolId, body: PoolEvaluation, cp: CP, caller: Leader) -> PoolView:
    return (await cp.pools.evaluate(pool_id, body, caller)).view()
