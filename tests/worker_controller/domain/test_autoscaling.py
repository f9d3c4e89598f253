"""The autoscaler's decision (`plan_pool`), table by table: one table per policy, then convergence, phases,
drain and delete, and what is recorded. Each row is a pool as the control plane answers it and what the
autoscaler must do about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import WaitingDemand, retirement_order
from lcm_core.domain.pools import (
    AllowedHours,
    PoolPhase,
    PoolView,
    PoolWork,
    ScaleDownAction,
    ScalingAction,
    ScalingConfig,
    ScalingDecision,
    ScalingTrigger,
)
from lcm_core.domain.workers import CapacitySummary, LaunchFailure, Resources, WorkerSummary
from worker_controller.domain.autoscaling import launch_regions, plan_pool

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

LAB_COUNT_CASES = [
    Case("5 sessions on 2 per worker need 3", LAB, [worker("a", sessions=2)], desired=1, waiting=3, size=3,
         action=ScalingAction.SCALE_UP, trigger=ScalingTrigger.POLICY, rule="labs_above_max", launch=2,
         phase=PoolPhase.SCALING_UP, reason_has="2 session(s) held and 3 waiting need 3 worker(s)"),
    Case("more than the maximum allows: held at 3", LAB, [worker("a", sessions=2)], desired=1, waiting=8, size=3,
         action=ScalingAction.SCALE_UP, trigger=ScalingTrigger.POLICY, launch=2, reason_has="maximum of 3"),
    Case("scale-up cooldown holds a growth no session waits for", LAB, [worker("a", sessions=4)], desired=1,
         pool=RECENTLY, rule="cooldown_up", reason_has="scale-up cooldown has 6.0 min left", phase=PoolPhase.READY),
    Case("sessions waiting for the pool are not held by the cooldown", LAB,
         [worker("a", sessions=2), worker("b", sessions=2)], desired=2, waiting=1, pool=RECENTLY, size=3,
         action=ScalingAction.SCALE_UP, rule="labs_above_max", launch=1),
    Case("sessions per worker within bounds: steady", LAB, [worker("a", sessions=2), worker("b", sessions=1)],
         desired=2, rule="steady", phase=PoolPhase.READY),
    Case("empty pool of 3 goes back to its minimum", LAB, [worker("a"), worker("b"), worker("c")], desired=3,
         size=1, action=ScalingAction.SCALE_DOWN, trigger=ScalingTrigger.POLICY, rule="labs_below_min",
         retire=["id-a", "id-b"], phase=PoolPhase.SCALING_DOWN, reason_has="raised to the minimum of 1"),
    Case("a worker holding a session is never retired", LAB,
         [worker("a"), worker("b", sessions=1), worker("c")], desired=3, size=1, action=ScalingAction.SCALE_DOWN,
         retire=["id-a", "id-c"], reason_has="0.3 per worker"),
    Case("scale-down waits its cooldown after a scale-down", LAB, [worker("a"), worker("b"), worker("c")],
         desired=3, pool={"last_scale_down_at": NOW - timedelta(minutes=12)}, rule="cooldown_down",
         reason_has="scale-down cooldown has 8.0 min left"),
    Case("scale-down waits the delay after a scale-up", LAB, [worker("a"), worker("b"), worker("c")],
         desired=3, pool=RECENTLY, rule="cooldown_down",
         reason_has="the delay after the last scale-up has 6.0 min left"),
    Case("scale-down goes once the delay after a scale-up passed", LAB, [worker("a"), worker("b"), worker("c")],
         desired=3, pool={"last_scale_up_at": NOW - timedelta(minutes=12)}, size=1,
         action=ScalingAction.SCALE_DOWN, retire=["id-a", "id-b"]),
    Case("a worker left unlicensed takes no session: the sessions need workers besides it", LAB,
         [worker("a", sessions=2), worker("b", license_status=LicenseStatus.UNREGISTERED, phase="READY_UNLICENSED")],
         desired=2, waiting=1, size=3, action=ScalingAction.SCALE_UP, launch=1, reason_has="1 of them stuck"),
    Case("waiting sessions count before any worker is ready", LAB, [worker("a", state="launching")], desired=1,
         waiting=4, size=2, action=ScalingAction.SCALE_UP, launch=1),
    # Workers can be full of CPU or memory before they are full of sessions: a session that waits for the pool
    # for room is given a worker, or it would wait until its timeslot ends.
    Case("a session waiting for CPU below the session count gets a worker", LAB15, [FULL_CPU], desired=1,
         waiting=1, waiting_cpu=11, size=2, action=ScalingAction.SCALE_UP, rule="sessions_waiting", launch=1,
         pool=RECENTLY, reason_has="1 session(s) wait for room (11 cores, 8 GB): 1 more worker(s)"),
    Case("a session waiting for room already coming launches nothing", LAB15,
         [FULL_CPU, worker("b", state="launching")], desired=2, waiting=1, waiting_cpu=11, rule="steady"),
    Case("an empty ready worker is the room a waiting session gets next", LAB15, [FULL_CPU, worker("b")],
         desired=2, waiting=1, waiting_cpu=11, rule="steady"),
    Case("nothing is retired while a session waits for the pool", LAB15,
         [FULL_CPU, worker("b", state="launching"), worker("c")], desired=3, waiting=1, waiting_cpu=11,
         rule="steady"),
]

CAPACITY = {"policy": "capacity_based", "min_workers": 1, "max_workers": 5}
CAPACITY_CASES = [
    Case("CPU above 75 %: one more", CAPACITY, [worker("a", cpu=85), worker("b", cpu=80)], desired=2, size=3,
         action=ScalingAction.SCALE_UP, rule="utilisation_high", launch=1, reason_has="above 75% / 80%"),
    Case("memory above 80 %: one more", CAPACITY, [worker("a", cpu=10, memory=90)], desired=1, size=2,
         action=ScalingAction.SCALE_UP, launch=1),
    Case("both below 30/40 %: one fewer", CAPACITY, [worker("a", cpu=10, memory=10), worker("b", cpu=12,
         memory=15), worker("c", cpu=5, memory=5)], desired=3, size=2, action=ScalingAction.SCALE_DOWN,
         rule="utilisation_low", retire=["id-c"]),
    Case("memory not low enough: steady", CAPACITY, [worker("a", cpu=10, memory=45), worker("b", cpu=10,
         memory=45)], desired=2, rule="steady"),
    Case("one fewer would overload the rest: steady", {**CAPACITY, "memory_scale_up_percent": 70},
         [worker("a", cpu=29, memory=39),
         worker("b", cpu=29, memory=39)], desired=2, rule="steady"),
    Case("nothing measured yet: steady", CAPACITY, [worker("a", cpu=None, memory=None)], desired=1, rule="steady"),
    Case("sessions waiting for room: enough workers for them", CAPACITY, [worker("a", sessions=3)], desired=1,
         waiting=3, waiting_cpu=60.0, size=3, action=ScalingAction.SCALE_UP, rule="sessions_waiting", launch=2),
    Case("sessions waiting for room are not held by the cooldown", CAPACITY, [worker("a", sessions=3)], desired=1,
         waiting=1, waiting_cpu=8.0, pool=RECENTLY, size=2, action=ScalingAction.SCALE_UP, launch=1),
    Case("utilisation is held by the cooldown", CAPACITY, [worker("a", cpu=90)], desired=1, pool=RECENTLY,
         rule="cooldown_up"),
    Case("sessions waiting, a worker ready and still empty: they go there, nothing launched", CAPACITY,
         [worker("a", cpu=1, memory=1)], desired=1, waiting=1, waiting_cpu=4.0, rule="steady"),
    Case("a session no worker can hold launches what it needs once, not worker after worker", CAPACITY,
         [worker("a", sessions=1), worker("b"), worker("c")], desired=3, waiting=1, waiting_cpu=64.0, rule="steady"),
    Case("a worker whose CML failed is not waited for: one is launched besides it", CAPACITY,
         [worker("a", sessions=2), worker("b", service_status=ServiceStatus.ERROR, phase="STARTING")], desired=2,
         waiting=1, waiting_cpu=4.0, size=3, action=ScalingAction.SCALE_UP, launch=1),
    Case("sessions waiting, a worker already on its way", CAPACITY, [worker("a"), worker("b", state="launching")],
         desired=2, waiting=1, waiting_cpu=8.0, rule="steady", phase=PoolPhase.SCALING_UP),
    Case("never below the minimum", {**CAPACITY, "min_workers": 2}, [worker("a", cpu=1, memory=1),
         worker("b", cpu=1, memory=1)], desired=2, rule="steady"),
]

PARIS_DAY = {"start": "08:00", "end": "18:00", "timezone": "Europe/Paris", "weekdays": [0, 1, 2, 3, 4]}
SCHEDULED = {"policy": "scheduled", "min_workers": 1, "max_workers": 4, "allowed_hours": PARIS_DAY}
SCHEDULED_CASES = [
    Case("inside the allowed hours: the maximum", SCHEDULED, [worker("a")], desired=1, size=4,
         action=ScalingAction.SCALE_UP, rule="scheduled_in", launch=3, reason_has="08:00-18:00 Europe/Paris"),
    Case("outside them (20:00 Paris): the minimum", SCHEDULED, [worker("a"), worker("b"), worker("c")], desired=3,
         now=NOW.replace(hour=19), size=1, action=ScalingAction.SCALE_DOWN, rule="scheduled_out",
         retire=["id-a", "id-b"]),
    Case("on a Saturday: the minimum", SCHEDULED, [worker("a")], desired=1, now=NOW - timedelta(days=2),
         rule="scheduled_out"),
    Case("no allowed hours: keeps its size", {"policy": "scheduled", "max_workers": 4}, [worker("a")], desired=1,
         rule="no_schedule"),
    Case("an operator's scale-down is not undone at once", SCHEDULED, [worker("a")], desired=1,
         pool={"last_scale_down_at": NOW - timedelta(minutes=1), "last_decision": ScalingDecision(
             at=NOW - timedelta(minutes=1), action=ScalingAction.SCALE_DOWN, trigger=ScalingTrigger.MANUAL,
             from_workers=4, to_workers=1, reason="exam over", by="admin")}, rule="cooldown_up"),
    Case("nor once the autoscaler has recorded its retirements since", SCHEDULED, [worker("a")], desired=1,
         pool={"last_scale_down_at": NOW - timedelta(minutes=1), "last_decision": ScalingDecision(
             at=NOW - timedelta(seconds=50), action=ScalingAction.SCALE_DOWN, trigger=ScalingTrigger.CONVERGE,
             from_workers=1, to_workers=1, reason="retiring 3 worker(s)")}, rule="cooldown_up"),
    Case("allowed hours start and end at the same time: the whole day", {**SCHEDULED, "allowed_hours": {
         "start": "00:00", "end": "00:00", "timezone": "Europe/Paris"}}, [worker("a")], desired=1,
         now=NOW.replace(hour=22, minute=59, second=30), size=4, action=ScalingAction.SCALE_UP, launch=3,
         reason_has="all day Europe/Paris"),
]

HYBRID = {"policy": "hybrid", "min_workers": 1, "max_workers": 4, "max_labs_per_worker": 4}
HYBRID_CASES = [
    Case("lab count asks up, utilisation steady: up", HYBRID, [worker("a", sessions=4)], desired=1, waiting=2,
         size=2, action=ScalingAction.SCALE_UP, launch=1),
    Case("utilisation asks up, lab count steady: up", HYBRID, [worker("a", sessions=3, cpu=90),
         worker("b", sessions=3, cpu=90)], desired=2, size=3, action=ScalingAction.SCALE_UP, launch=1),
    Case("lab count asks down, utilisation does not: steady", HYBRID, [worker("a", cpu=60, memory=60),
         worker("b", cpu=60, memory=60)], desired=2, rule="steady"),
    Case("both ask down: down", HYBRID, [worker("a", cpu=5, memory=5), worker("b", cpu=5, memory=5)],
         desired=2, size=1, action=ScalingAction.SCALE_DOWN, retire=["id-a"]),
    Case("outside the allowed hours: no automatic scaling", {**HYBRID, "allowed_hours": PARIS_DAY},
         [worker("a", sessions=4)], desired=1, waiting=6, now=NOW.replace(hour=21), rule="outside_hours"),
]

NONE = {"policy": "none", "min_workers": 0, "max_workers": 5}
NONE_CASES = [
    Case("a new pool launches its first worker", {**NONE, "min_workers": 1}, [], desired=1,
         action=ScalingAction.SCALE_UP, trigger=ScalingTrigger.CONVERGE, rule="converge", launch=1,
         phase=PoolPhase.INITIALIZING, pool={"ready_since": None},
         reason_has="the pool is held at 1 worker(s) and counts 0; launching 1 from template metal"),
    Case("at its size: nothing", NONE, [worker("a"), worker("b")], desired=2, rule="manual",
         phase=PoolPhase.READY),
    Case("scaled down by an operator: retires the empty ones", NONE,
         [worker("a"), worker("b", sessions=2), worker("c")], desired=1, action=ScalingAction.SCALE_DOWN,
         trigger=ScalingTrigger.CONVERGE, retire=["id-a", "id-c"]),
    Case("a stopped worker is resumed before a new one is launched", NONE,
         [worker("a"), worker("b", state="parked")], desired=3, action=ScalingAction.SCALE_UP,
         resume=["id-b"], launch=1),
    Case("a failed worker is replaced", NONE, [worker("a"), worker("b", state="failed")], desired=2,
         action=ScalingAction.SCALE_UP, launch=1),
    Case("a leaving worker does not count", NONE, [worker("a"), worker("b", state="leaving")], desired=1,
         rule="manual", phase=PoolPhase.SCALING_DOWN),
    Case("the minimum was raised above its size", {**NONE, "min_workers": 3}, [worker("a")], desired=1, size=3,
         action=ScalingAction.SCALE_UP, trigger=ScalingTrigger.BOUNDS, rule="below_min", launch=2),
]


@pytest.mark.parametrize("case", LAB_COUNT_CASES, ids=lambda c: c.name)
def test_lab_count_based(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", CAPACITY_CASES, ids=lambda c: c.name)
def test_capacity_based(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", SCHEDULED_CASES, ids=lambda c: c.name)
def test_scheduled(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", HYBRID_CASES, ids=lambda c: c.name)
def test_hybrid(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", NONE_CASES, ids=lambda c: c.name)
def test_policy_none(case: Case) -> None:
    check(case)


def unlaunched(name: str, attempts: int, **extra: Any) -> WorkerSummary:
    """A member whose instance could not be launched `attempts` times in a row (none if 0)."""
    failure = None if attempts == 0 else LaunchFailure(
        since=NOW - timedelta(minutes=5), last_at=NOW - timedelta(seconds=10), attempts=attempts,
        error="no AMI matches 'CML-2.9.*' in us-east-1")
    return worker(name, state="launching", status=WorkerStatus.PENDING, launch_failure=failure, **extra)


FRESH = {"ready_since": None}

LAUNCH_FAILURE_CASES = [
    Case("a member that failed to launch 3 times fails the pool", {**NONE, "min_workers": 1}, [unlaunched("a", 3)],
         desired=1, pool=FRESH, rule="launch_failing", phase=PoolPhase.FAILED,
         reason_has="launching no more workers: 1 worker(s) could not be launched: a (3 attempts since "
                    "2026-12-07 08:55 UTC); last error: no AMI matches 'CML-2.9.*' in us-east-1"),
    Case("fewer failures than the limit: still initializing", {**NONE, "min_workers": 1}, [unlaunched("a", 2)],
         desired=1, pool=FRESH, rule="manual", phase=PoolPhase.INITIALIZING),
    Case("the limit is the controller's setting", {**NONE, "min_workers": 1}, [unlaunched("a", 2)],
         desired=1, pool=FRESH, launch_failure_limit=2, rule="launch_failing", phase=PoolPhase.FAILED),
    Case("a ready pool whose new member cannot be launched fails too", NONE, [worker("b"), unlaunched("a", 4)],
         desired=2, rule="launch_failing", phase=PoolPhase.FAILED, reason_has="a (4 attempts"),
    Case("sessions waiting launch no more workers while one fails", LAB,
         [worker("b", sessions=2), unlaunched("a", 3)], desired=2, waiting=3, size=3,
         action=ScalingAction.SCALE_UP, rule="launch_failing", launch=0, phase=PoolPhase.FAILED,
         reason_has="cannot launch 1 more worker(s) until the failing launch gets through"),
    Case("scaled down while a member fails to launch: that member is retired first", NONE,
         [worker("b"), unlaunched("a", 3)], desired=1, action=ScalingAction.SCALE_DOWN, retire=["id-a"],
         phase=PoolPhase.FAILED),
    Case("a failing member retired by a scale-down fails the pool no more", NONE,
         [worker("b"), unlaunched("a", 5, desired_status=DesiredStatus.TERMINATED)], desired=1, rule="manual",
         phase=PoolPhase.READY),
    Case("its failures cleared, the pool is initializing again", {**NONE, "min_workers": 1}, [unlaunched("a", 0)],
         desired=1, pool=FRESH, rule="manual", phase=PoolPhase.INITIALIZING),
]


@pytest.mark.parametrize("case", LAUNCH_FAILURE_CASES, ids=lambda c: c.name)
def test_launch_failures(case: Case) -> None:
    check(case)
    plan = plan_pool(work_for(case))
    assert (plan.error is not None) is (plan.phase is PoolPhase.FAILED), plan.error
    assert plan.warm_up == []


def test_a_failing_launch_is_recorded_once_its_error_kept_current_and_its_recovery_recorded() -> None:
    case = Case("", {**NONE, "min_workers": 1}, [unlaunched("a", 3)], desired=1, pool=FRESH)
    work = work_for(case)
    first = plan_pool(work).evaluation(work.pool)
    assert first is not None
    assert first.decision is not None
    assert first.decision.inputs["rule"] == "launch_failing"
    assert first.decision.inputs["launch_failure_limit"] == 3
    assert first.phase is PoolPhase.FAILED
    assert first.error is not None
    assert "a (3 attempts" in first.error
    work.pool.last_decision, work.pool.phase, work.pool.error = first.decision, first.phase, first.error
    work.pool.capacity = first.capacity
    failure = work.workers[0].launch_failure
    assert failure is not None
    failure.attempts = 4
    again = plan_pool(work).evaluation(work.pool)
    assert again is not None
    assert again.decision is None  # the same failure: no new history entry, its error kept current
    assert again.error is not None
    assert "a (4 attempts" in again.error
    work.pool.error = again.error
    work.workers[0].launch_failure = None
    recovered = plan_pool(work).evaluation(work.pool)
    assert recovered is not None
    assert recovered.decision is not None
    assert recovered.decision.inputs["rule"] != "launch_failing"
    assert (recovered.phase, recovered.error) == (PoolPhase.INITIALIZING, None)


def test_a_template_that_cannot_launch_fails_the_pool() -> None:
    work = work_for(Case("", NONE, [], desired=1))
    work.template_enabled = False
    plan = plan_pool(work)
    assert plan.phase is PoolPhase.FAILED
    assert plan.launch == []
    assert plan.error is not None
    assert "disabled" in plan.error
    assert "disabled" in plan.decision.reason


def test_a_drained_pool_retires_its_workers_to_stop() -> None:
    case = Case("", LAB, [worker("a", sessions=1), worker("b"), worker("c", state="parked")], desired=2,
                pool={"draining": True})
    plan = plan_pool(work_for(case))
    assert plan.phase is PoolPhase.DRAINING
    assert plan.retire == ["id-a", "id-b"]
    assert plan.retire_then is ScaleDownAction.STOP
    assert plan.desired_workers == 2
    assert plan.decision.trigger is ScalingTrigger.DRAIN
    assert plan.decision.action is ScalingAction.SCALE_DOWN


def test_a_deleted_pool_terminates_every_worker_then_is_terminated() -> None:
    case = Case("", LAB, [worker("a"), worker("b", state="parked"),
                          worker("c", state="leaving", drain_then=DesiredStatus.TERMINATED)],
                desired=2, pool={"deleting": True})
    plan = plan_pool(work_for(case))
    assert plan.phase is PoolPhase.TERMINATING
    assert plan.retire == ["id-a", "id-b"]
    assert plan.retire_then is ScaleDownAction.TERMINATE
    assert plan.desired_workers == 0
    stopping = worker("d", state="leaving")  # a scale-down's drain to stop under way: retired once stopped
    later = plan_pool(work_for(Case("", LAB, [stopping], desired=0, pool={"deleting": True})))
    assert later.retire == []
    assert later.phase is PoolPhase.TERMINATING
    assert "waiting for 1 worker(s) to terminate" in later.decision.reason
    gone = worker("a", status=WorkerStatus.TERMINATED, desired_status=DesiredStatus.TERMINATED)
    done = plan_pool(work_for(Case("", LAB, [gone], desired=0, pool={"deleting": True})))
    assert done.phase is PoolPhase.TERMINATED
    assert done.retire == []


def test_the_least_useful_empty_worker_is_retired_first() -> None:
    rows = [worker("a", cpu=50), worker("b", cpu=5), worker("c", license_status=LicenseStatus.UNREGISTERED,
                                                               phase="READY_UNLICENSED"),
            worker("d", state="launching")]
    plan = plan_pool(work_for(Case("", NONE, rows, desired=2)))
    assert plan.retire == ["id-d", "id-c"]  # not serving yet, then serving but unlicensed; busier ones stay


def test_the_autoscaler_retires_in_the_order_the_scheduler_packs_against() -> None:
    """The shared `retirement_order` decides (the scheduler fills a pool from its other end): a pool held at 2
    retires the least useful of its empty workers, whatever order they are listed in."""
    rows = [worker("e", cpu=70), worker("a", cpu=None, health_status="degraded"), worker("d", cpu=5, labs_count=1),
            worker("b", cpu=5), worker("c", cpu=5), worker("f", sessions=1, labs_count=1)]
    plan = plan_pool(work_for(Case("", NONE, rows, desired=2)))
    empty_least_useful_first = [r.id for r in sorted(rows, key=retirement_order) if r.sessions == 0]
    assert plan.retire == empty_least_useful_first[:4] == ["id-a", "id-b", "id-c", "id-e"]


def test_launches_balance_the_regions() -> None:
    members = [worker("a", region="us-east-1"), worker("b", region="us-east-1")]
    assert launch_regions(3, ["us-east-1", "us-west-2"], members) == ["us-west-2", "us-west-2", "us-east-1"]


def test_allowed_hours_across_midnight_belong_to_the_day_they_start() -> None:
    night = AllowedHours(start=time(22, 0), end=time(6, 0), timezone="UTC", weekdays=[4])  # Friday night
    friday_late = datetime(2026, 12, 11, 23, 0, tzinfo=UTC)
    assert night.contains(friday_late)
    assert night.contains(friday_late + timedelta(hours=3))
    assert not night.contains(friday_late - timedelta(days=1, hours=-4))  # Thursday 03:00 follows Wednesday


def test_the_same_nothing_is_reported_once() -> None:
    case = Case("", LAB, [worker("a", sessions=2), worker("b", sessions=1)], desired=2)
    work = work_for(case)
    first = plan_pool(work).evaluation(work.pool)
    assert first is not None
    assert first.decision is not None
    assert first.decision.inputs["rule"] == "steady"
    work.pool.last_decision = first.decision
    work.pool.capacity, work.pool.phase = first.capacity, first.phase
    assert plan_pool(work).evaluation(work.pool) is None  # nothing new: no write, no history entry
    work.workers[0].cpu_percent = 55.0
    again = plan_pool(work).evaluation(work.pool)
    assert again is not None
    assert again.decision is None
    assert again.capacity.avg_cpu_percent == 37.5


def test_an_evaluation_carries_the_version_it_was_made_on() -> None:
    work = work_for(Case("", LAB, [worker("a", sessions=2)], desired=1, waiting=3))
    evaluation = plan_pool(work).evaluation(work.pool)
    assert evaluation is not None
    assert evaluation.expected_version == 7
    assert evaluation.launch == ["us-east-1", "us-east-1"]
    assert evaluation.observed_at == NOW
    assert isinstance(evaluation.decision, ScalingDecision)
    assert evaluation.decision.inputs["waiting"] == 3


def test_a_licensed_worker_not_measured_yet_is_still_on_its_way() -> None:
    """Ready means what the scheduler places sessions on: until its health is measured, a new worker is on its
    way (sessions wait for it rather than leave the pool for other workers)."""
    rows = [worker("a", sessions=2), worker("b", health_status="unknown", cpu=None, memory=None)]
    plan = plan_pool(work_for(Case("", LAB, rows, desired=2)))
    assert plan.capacity.workers == 2
    assert plan.capacity.ready == 1
    assert plan.phase is PoolPhase.SCALING_UP


def test_a_worker_being_resumed_is_on_its_way_not_stuck() -> None:
    """Resumed a moment ago, EC2 still reports it stopped: the sessions wait for it, nothing more is resumed."""
    resumed = worker("b", state="parked", desired_status=DesiredStatus.RUNNING)
    plan = plan_pool(work_for(Case("", LAB, [worker("a", sessions=2), resumed, worker("c", state="parked")],
                                   desired=2, waiting=1)))
    assert (plan.capacity.on_the_way, plan.capacity.stuck) == (1, 0)
    assert plan.resume == []
    assert plan.launch == []
    assert plan.phase is PoolPhase.SCALING_UP


@pytest.mark.parametrize(("scaling", "thresholds"), [
    (LAB, {"max_labs_per_worker": 2, "min_labs_per_worker": 1}),
    (CAPACITY, {"cpu_scale_up_percent": 75, "cpu_scale_down_percent": 30, "memory_scale_up_percent": 80,
                "memory_scale_down_percent": 40}),
    (HYBRID, {"max_labs_per_worker": 4, "min_labs_per_worker": 3, "cpu_scale_up_percent": 75,
              "cpu_scale_down_percent": 30, "memory_scale_up_percent": 80, "memory_scale_down_percent": 40}),
    (SCHEDULED, {}),
    (NONE, {}),
], ids=["lab_count_based", "capacity_based", "hybrid", "scheduled", "none"])
def test_a_decision_records_the_thresholds_it_was_taken_on(scaling: dict[str, Any],
                                                           thresholds: dict[str, float]) -> None:
    """The history says on what numbers each decision was taken: the pool's figures and its policy's
    thresholds (an operator may change them since)."""
    decision = plan_pool(work_for(Case("", scaling, [worker("a", sessions=1)], desired=1))).decision
    named = {"max_labs_per_worker", "min_labs_per_worker", "cpu_scale_up_percent", "cpu_scale_down_percent",
             "memory_scale_up_percent", "memory_scale_down_percent"}
    assert {key: value for key, value in decision.inputs.items() if key in named} == thresholds
    assert (decision.inputs["workers"], decision.inputs["sessions"]) == (1, 1)


@pytest.mark.parametrize("scaling", [{**CAPACITY, "max_workers": 10}, {**LAB15, "max_workers": 10}],
                         ids=["capacity", "lab-count"])
def test_a_session_no_empty_worker_holds_launches_nothing_and_holds_no_retirement(scaling: dict[str, Any]) -> None:
    """The control plane counts apart a waiting session larger than an empty worker of the template
    (`WaitingDemand.too_large`): it is given no room (once the empty workers it was given were filled by other
    sessions, it asked for more again, up to the maximum) and does not keep the pool from shrinking."""
    busy = [worker(name, sessions=3, cpu=50, memory=50) for name in "abc"]
    case = Case("a 64-core session, workers of 48", scaling, busy, desired=3)
    work = work_for(case)
    work.waiting = WaitingDemand(too_large=1)
    plan = plan_pool(work)
    assert (plan.desired_workers, plan.launch) == (3, []), plan.decision.reason
    assert "1 session(s) waiting for the pool need more than an empty worker of template metal" in \
        plan.decision.reason
    idle = Case("idle", scaling, [worker("a", cpu=1, memory=1), worker("b", cpu=1, memory=1),
                worker("c", cpu=1, memory=1)], desired=3)
    work = work_for(idle)
    work.waiting = WaitingDemand(too_large=1)
    assert plan_pool(work).decision.action is ScalingAction.SCALE_DOWN


@pytest.mark.parametrize("action", [ScaleDownAction.STOP, ScaleDownAction.TERMINATE])
def test_a_scale_down_stops_or_terminates_as_the_pool_says(action: ScaleDownAction) -> None:
    case = Case("", {**LAB, "scale_down_action": action.value}, [worker("a"), worker("b", sessions=1)], desired=2)
    plan = plan_pool(work_for(case))
    assert (plan.desired_workers, plan.retire, plan.terminate) == (1, ["id-a"], [])
    assert plan.retire_then is action
    assert f"licence released, then {action.value})" in plan.decision.reason
