"""The autoscaler's evaluations of a pool (a mixin of `PoolService`, docs/pools.md "How an evaluation is
applied"): the report is recorded on the pool under its version check, then carried out on the workers.

The record comes first and stands on its own: a worker that cannot be launched, resumed or retired is logged
and the rest goes on. The autoscaler is level-triggered; it reads the pool again and converges on its next
evaluation. Launches are idempotent: each has a sequence number (the pool's `launches` counter) that names its
worker and keys its creation, so a replayed launch finds the worker it created the first time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from control_plane_api.application import versioned
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.pool import WorkerPool, evaluation_fingerprint, launch_key
from lcm_core.domain.enums import DesiredStatus
from lcm_core.domain.pools import PoolEvaluation, ScaleDownAction
from lcm_core.errors import FencedError, LcmError

if TYPE_CHECKING:
    from control_plane_api.application.ports import PoolStore, PoolWorkers

logger = logging.getLogger(__name__)

RETIRE_THEN = {ScaleDownAction.STOP: DesiredStatus.STOPPED, ScaleDownAction.TERMINATE: DesiredStatus.TERMINATED}


def launch_name(pool_name: str, seq: int) -> str:
    return f"{pool_name}-{seq:03d}"


class PoolEvaluations:
    """Behaviour only: `PoolService` supplies the store, the worker use cases and the publication."""

    if TYPE_CHECKING:
        _store: PoolStore
        _workers: PoolWorkers
        _clock: Callable[[], datetime]
        _attempts: int

        async def _published(self, pool: WorkerPool, events: list[DomainEvent], *, wake: bool) -> None: ...

    async def _after_evaluation(self, pool: WorkerPool, events: list[DomainEvent]) -> None:
        await self._published(pool, events, wake=False)

    async def evaluate(self, pool_id: str, report: PoolEvaluation, leader: LeaderCaller) -> WorkerPool:
        """Record the evaluation (409 when the pool changed since the autoscaler read it, or when its leader was
        deposed), then launch (into the pool, or into its warm pool), resume, retire and terminate the workers it
        names. Returns the pool as
        recorded."""
        launches: list[int] = []

        def change(pool: WorkerPool, now: datetime) -> list[DomainEvent]:
            events, numbers = pool.apply_evaluation(report, now, leader.by)
            launches[:] = numbers
            return events

        done = await versioned.mutate(self._store, pool_id, change, clock=self._clock, attempts=self._attempts,
                                      leader=leader, after_commit=self._after_evaluation,
                                      fingerprint=evaluation_fingerprint)
        pool = done.aggregate
        by = f"pool {pool.name}"
        then = RETIRE_THEN[report.retire_then]

        async def launch(seq: int, region: str, *, warm: bool = False) -> object:
            return await self._workers.create_from_template(
                pool.template_name, region, launch_name(pool.name, seq), by, launch_key(pool.id, seq),
                pool_id=pool.id, lab_track=pool.lab_track, register_license=True, park_when_ready=warm,
                leader=leader)

        async def resume(worker_id: str) -> object:
            return await self._workers.resume_member(worker_id, pool.id, by, leader)

        # A deleted or drained pool's workers go because an operator asked, not because the pool scaled down
        # (the cost ledger counts only a scale-down's stopped time as saved).
        retired_by = (f"the deletion of pool {pool.name}" if pool.deleting
                      else f"the drain of pool {pool.name}" if pool.draining else by)

        async def retire(worker_id: str, then: DesiredStatus = then) -> object:
            return await self._workers.retire_member(worker_id, pool.id, then, retired_by, leader)

        regions = [(region, False) for region in report.launch] + [(region, True) for region in report.warm_up]
        for (region, warm), seq in zip(regions, launches, strict=True):
            await self._carry_out(pool, "launch", launch_name(pool.name, seq), launch(seq, region, warm=warm))
        for worker_id in dict.fromkeys(report.resume):
            await self._carry_out(pool, "resume", worker_id, resume(worker_id))
        # Terminated whatever `retire_then` says, through the path of a retirement (the one a deleted pool's
        # workers take): a running member is drained first, and the worker-controller releases the licence of
        # any before its instance goes.
        terminate = dict.fromkeys(report.terminate)
        for worker_id in dict.fromkeys(report.retire):
            if worker_id not in terminate:
                await self._carry_out(pool, "retire", worker_id, retire(worker_id))
        for worker_id in terminate:
            await self._carry_out(pool, "terminate", worker_id, retire(worker_id, DesiredStatus.TERMINATED))
        return pool

    async def _carry_out(self, pool: WorkerPool, what: str, worker: str, act: Awaitable[object]) -> None:
        """One worker's part: a refusal (gone, not a member, a state that does not allow it) is logged and
        the rest goes on; a deposed leader's write stops everything (it must not act any more)."""
        try:
            await act
        except FencedError:
            raise
        except LcmError as exc:
            logger.warning("pool %s: could not %s worker %s: %s", pool.name, what, worker, exc.message)
