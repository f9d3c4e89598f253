"""The autoscaler's decision tables' rows: a pool member in a few states, a case (a pool as the control plane
answers it, and what the autoscaler must do about it), the check of one case, and the scaling configurations
the tables share (`test_autoscaling.py`, `test_autoscaling_decisions.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pools import (
    PoolPhase,
    PoolView,
    PoolWork,
    ScalingAction,
    ScalingConfig,
    ScalingTrigger,
)
from lcm_core.domain.workers import CapacitySummary, Resources, WorkerSummary
from worker_controller.domain.autoscaling import plan_pool

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris
M5ZN = Resources(cpu_cores=48, memory_gb=192, storage_gb=500, max_nodes=200)


def worker(name: str, *, sessions: int = 0, cpu: float | None = 20.0, memory: float | None = 30.0,
           state: str = "serving", region: str = "us-east-1", **extra: Any) -> WorkerSummary:
    """A pool member in one of a few states: serving (READY/ACTIVE), launching, parked (stopped by a
    scale-down), leaving (drained, then stopped), failed."""
    row: dict[str, Any] = dict(id=f"id-{name}", name=name, aws_region=region, pool_id="p1", lab_track="ccna",
                               sessions=sessions, cpu_percent=cpu, memory_percent=memory, health_status="healthy",
                               capacity=CapacitySummary(declared=M5ZN))
    if state == "serving":
        row.update(status=WorkerStatus.RUNNING, desired_status=DesiredStatus.RUNNING,
                   service_status=ServiceStatus.AVAILABLE, license_status=LicenseStatus.REGISTERED,
                   phase="ACTIVE" if sessions else "READY")
    elif state == "launching":
        row.update(status=WorkerStatus.PROVISIONING, desired_status=DesiredStatus.RUNNING,
                   phase="PROVISIONING_EC2", cpu_percent=None, memory_percent=None, health_status="unknown")
    elif state == "parked":
        row.update(status=WorkerStatus.STOPPED, desired_status=DesiredStatus.STOPPED, phase="STOPPED",
                   cpu_percent=None, memory_percent=None)
    elif state == "leaving":
        row.update(status=WorkerStatus.DRAINING, desired_status=DesiredStatus.RUNNING,
                   drain_then=DesiredStatus.STOPPED, service_status=ServiceStatus.AVAILABLE, phase="DRAINING")
    elif state == "failed":
        row.update(status=WorkerStatus.FAILED, desired_status=DesiredStatus.RUNNING, phase="FAILED")
    row.update(extra)
    return WorkerSummary(**row)


@dataclass
class Case:
    """One pool and what must be done about it."""

    name: str
    scaling: dict[str, Any]
    workers: list[WorkerSummary]
    desired: int
    waiting: int = 0
    waiting_cpu: float = 0.0
    pool: dict[str, Any] = field(default_factory=dict)
    now: datetime = NOW
    # expected
    size: int | None = None
    action: ScalingAction = ScalingAction.NONE
    trigger: ScalingTrigger | None = None
    rule: str | None = None
    launch: int = 0
    resume: list[str] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)
    phase: PoolPhase | None = None
    reason_has: str = ""
    launch_failure_limit: int = 3


def work_for(case: Case) -> PoolWork:
    pool = PoolView(id="p1", name="ccna-pool", lab_track="ccna", template_name="metal", regions=["us-east-1"],
                    scaling=ScalingConfig(**case.scaling), desired_workers=case.desired, phase=PoolPhase.READY,
                    version=7, **{"ready_since": NOW - timedelta(hours=1), **case.pool})
    return PoolWork(pool=pool, workers=case.workers, observed_at=case.now, template_capacity=M5ZN,
                    launch_failure_limit=case.launch_failure_limit,
                    waiting=WaitingDemand(sessions=case.waiting, cpu_cores=case.waiting_cpu,
                                          memory_gb=case.waiting * 8.0))


def check(case: Case) -> None:
    plan = plan_pool(work_for(case))
    d = plan.decision
    assert plan.desired_workers == (case.size if case.size is not None else case.desired), d.reason
    assert d.action is case.action, d.reason
    if case.trigger is not None:
        assert d.trigger is case.trigger, d.reason
    if case.rule is not None:
        assert d.inputs["rule"] == case.rule, d.reason
    assert len(plan.launch) == case.launch, d.reason
    assert plan.resume == case.resume, d.reason
    assert plan.retire == case.retire, d.reason
    if case.phase is not None:
        assert plan.phase is case.phase, d.reason
    assert case.reason_has in d.reason
    assert d.from_workers == case.desired
    assert d.to_workers == plan.desired_workers


LAB = {"policy": "lab_count_based", "min_workers": 1, "max_workers": 3, "max_labs_per_worker": 2}
RECENTLY = {"last_scale_up_at": NOW - timedelta(minutes=4)}

LAB15 = {**LAB, "max_labs_per_worker": 15}
FULL_CPU = worker("a", sessions=4, capacity=CapacitySummary(declared=M5ZN, allocated=Resources(cpu_cores=44,
                                                                                             memory_gb=32)))

CAPACITY = {"policy": "capacity_based", "min_workers": 1, "max_workers": 5}
PARIS_DAY = {"start": "08:00", "end": "18:00", "timezone": "Europe/Paris", "weekdays": [0, 1, 2, 3, 4]}
SCHEDULED = {"policy": "scheduled", "min_workers": 1, "max_workers": 4, "allowed_hours": PARIS_DAY}
HYBRID = {"policy": "hybrid", "min_workers": 1, "max_workers": 4, "max_labs_per_worker": 4}
NONE = {"policy": "none", "min_workers": 0, "max_workers": 5}
