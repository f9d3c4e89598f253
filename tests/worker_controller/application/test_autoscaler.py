"""The autoscaler's reconcile of one pool over an in-memory control plane: it reports what `plan_pool` decided,
decides again when the pool changed since it was read, reports nothing when nothing changed, and changes
nothing once it no longer leads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pools import PoolEvaluation, PoolPhase, PoolView, PoolWork, ScalingConfig, ScalingPolicy
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import ConflictError, NotFoundError
from lcm_core.leader.fence import AlwaysLeading, LeadershipLost, LeaseFence
from worker_controller.application.autoscaler import PoolAutoscaler

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class FakePools:
    """The control plane's pool endpoints: the evaluation is applied like the control plane does (version
    check, decision recorded, phase and capacity kept)."""

    def __init__(self, pool: PoolView, workers: list[WorkerSummary], waiting: int = 0) -> None:
        self.pool, self.workers, self.waiting = pool, workers, waiting
        self.reports: list[PoolEvaluation] = []
        self.conflicts_left = 0

    async def pools(self) -> list[PoolView]:
        return [self.pool]

    async def pool_work(self, pool_id: str) -> PoolWork:
        if pool_id != self.pool.id:
            raise NotFoundError(f"pool {pool_id} not found")
        return PoolWork(pool=self.pool.model_copy(deep=True), workers=list(self.workers), observed_at=NOW,
                        waiting=WaitingDemand(sessions=self.waiting))

    async def report_evaluation(self, pool_id: str, evaluation: PoolEvaluation) -> PoolView:
        if self.conflicts_left:
            self.conflicts_left -= 1
            self.pool.version += 1
            raise ConflictError("pool changed since the autoscaler read it")
        assert evaluation.expected_version == self.pool.version
        self.reports.append(evaluation)
        update = {"phase": evaluation.phase, "capacity": evaluation.capacity, "version": self.pool.version + 1,
                  "desired_workers": evaluation.desired_workers}
        if evaluation.decision is not None:
            update["last_decision"] = evaluation.decision
        self.pool = self.pool.model_copy(update=update)
        return self.pool


def serving(name: str, sessions: int) -> WorkerSummary:
    return WorkerSummary(id=name, name=name, status=WorkerStatus.RUNNING, desired_status=DesiredStatus.RUNNING,
                         service_status=ServiceStatus.AVAILABLE, license_status=LicenseStatus.REGISTERED,
                         phase="ACTIVE", sessions=sessions, pool_id="p1", health_status="healthy")


def lab_pool() -> PoolView:
    return PoolView(id="p1", name="ccna", lab_track="ccna", template_name="metal", regions=["us-east-1"],
                    desired_workers=1, ready_since=NOW, version=3,
                    scaling=ScalingConfig(policy=ScalingPolicy.LAB_COUNT_BASED, min_workers=1, max_workers=3,
                                          max_labs_per_worker=2))


async def test_a_decision_is_reported_with_the_version_it_was_made_on() -> None:
    gateway = FakePools(lab_pool(), [serving("a", 2)], waiting=3)
    scaler = PoolAutoscaler(gateway, AlwaysLeading())
    result = await scaler.reconcile("p1")
    (report,) = gateway.reports
    assert report.expected_version == 3
    assert report.launch == ["us-east-1", "us-east-1"]
    assert report.decision is not None
    assert report.decision.action.value == "scale_up"
    assert report.phase is PoolPhase.SCALING_UP
    assert result.requeue_after is not None  # workers on their way: looked at again soon
    assert scaler.decisions["decisions_scale_up"] == 1


async def test_a_pool_changed_since_it_was_read_is_decided_again() -> None:
    gateway = FakePools(lab_pool(), [serving("a", 2)], waiting=3)
    gateway.conflicts_left = 1
    scaler = PoolAutoscaler(gateway, AlwaysLeading())
    first = await scaler.reconcile("p1")
    assert gateway.reports == []
    assert first.requeue_after is not None
    assert first.requeue_after < 1
    await scaler.reconcile("p1")
    assert [r.expected_version for r in gateway.reports] == [4]


async def test_nothing_new_is_not_reported_again() -> None:
    gateway = FakePools(lab_pool(), [serving("a", 1)])
    scaler = PoolAutoscaler(gateway, AlwaysLeading())
    await scaler.reconcile("p1")
    assert len(gateway.reports) == 1  # the first "steady" is recorded, with the phase and capacity
    result = await scaler.reconcile("p1")
    assert len(gateway.reports) == 1
    assert result.requeue_after is None


async def test_a_replica_that_no_longer_leads_changes_nothing() -> None:
    gateway = FakePools(lab_pool(), [serving("a", 2)], waiting=3)
    scaler = PoolAutoscaler(gateway, LeaseFence(lambda: None, margin_seconds=1.0))
    with pytest.raises(LeadershipLost):
        await scaler.reconcile("p1")
    assert gateway.reports == []


async def test_a_pool_gone_or_terminated_is_done() -> None:
    gateway = FakePools(lab_pool(), [])
    scaler = PoolAutoscaler(gateway, AlwaysLeading())
    assert (await scaler.reconcile("nope")).requeue_after is None
    gateway.pool.phase = PoolPhase.TERMINATED
    assert (await scaler.reconcile("p1")).requeue_after is None
    assert gateway.reports == []
    assert await scaler.list_keys() == ["p1"]
