"""The pool autoscaler: leader-only, level-triggered per pool (docs/pools.md, "The autoscaler").

Each reconcile of a pool reads it as the control plane has it now (the pool, its workers' rows, the sessions
waiting for it, its template), decides with the pure `plan_pool`, and reports the evaluation. The control plane
records the decision and carries it out (it creates the workers to launch, which the worker reconciler then
provisions and licenses; it drains the workers to retire, which go down only once empty and unlicensed).

Safety: the evaluation names the pool version it was decided on, and the control plane refuses it if the pool
changed since (an operator scaled, drained or edited it): the pool is then read and decided again. The fence is
passed before the report, so a replica that no longer leads changes nothing; the report is fenced in storage by
the leader epoch as well. Triggers: the etcd keys the control plane writes under `pools/` (a pool changed, a
session waits for capacity), a periodic resync, and a short requeue while workers are on their way.
"""

from __future__ import annotations

import logging
from collections import Counter

from lcm_core import tracing
from lcm_core.domain.pools import PoolPhase
from lcm_core.errors import ConflictError, NotFoundError
from lcm_core.leader.fence import Fence
from lcm_core.leader.loops import ReconcileResult
from worker_controller.application.ports import PoolGateway
from worker_controller.domain.autoscaling import PoolPlan, plan_pool

logger = logging.getLogger(__name__)

#: How soon a pool is looked at again while workers are launched, resumed or retired for it.
BUSY_REQUEUE_SECONDS = 5.0


class PoolAutoscaler:
    def __init__(self, gateway: PoolGateway, fence: Fence, *, launch_failure_limit: int = 3) -> None:
        self._gateway = gateway
        self._fence = fence
        self._launch_failure_limit = launch_failure_limit
        self.decisions: Counter[str] = Counter()
        """Decisions recorded, by action (`decisions_scale_up`, ...; shown in the controller's status)."""

    async def list_keys(self) -> list[str]:
        return [pool.id for pool in await self._gateway.pools()]

    async def reconcile(self, pool_id: str) -> ReconcileResult:
        """One evaluation of a pool, one trace (`pool.reconcile`, docs/tracing.md)."""
        with tracing.tracer().start_as_current_span("pool.reconcile") as span:
            span.set_attribute(tracing.POOL_ID, pool_id)
            return await self._reconcile(pool_id)

    async def _reconcile(self, pool_id: str) -> ReconcileResult:
        try:
            work = await self._gateway.pool_work(pool_id)
        except NotFoundError:
            return ReconcileResult.done()
        if work.pool.phase is PoolPhase.TERMINATED:
            return ReconcileResult.done()
        work.launch_failure_limit = self._launch_failure_limit
        plan = plan_pool(work)
        evaluation = plan.evaluation(work.pool)
        if evaluation is not None:
            self._fence.check(f"report the evaluation of pool {work.pool.name}")
            try:
                await self._gateway.report_evaluation(pool_id, evaluation)
            except ConflictError as exc:
                # The pool changed after it was read: decide again from what it is now.
                logger.info("pool %s changed since it was read (%s); deciding again", work.pool.name, exc.message)
                return ReconcileResult.requeue(0.2)
            if evaluation.decision is not None:
                self.decisions[f"decisions_{evaluation.decision.action.value}"] += 1
                self._log(work.pool.name, plan)
        return ReconcileResult.requeue(BUSY_REQUEUE_SECONDS) if _busy(plan) else ReconcileResult.done()

    @staticmethod
    def _log(pool: str, plan: PoolPlan) -> None:
        d = plan.decision
        level = logging.INFO if d.action.value != "none" else logging.DEBUG
        logger.log(level, "pool %s: %s %d -> %d (%s, %s): %s", pool, d.action.value, d.from_workers, d.to_workers,
                   d.trigger.value, plan.phase.value, d.reason)


def _busy(plan: PoolPlan) -> bool:
    """Workers are on their way in or out: look again soon rather than at the next resync."""
    return plan.acts or plan.phase in (PoolPhase.INITIALIZING, PoolPhase.SCALING_UP, PoolPhase.SCALING_DOWN,
                                       PoolPhase.DRAINING, PoolPhase.TERMINATING)
