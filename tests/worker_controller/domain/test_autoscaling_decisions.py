"""The autoscaler's decision (`plan_pool`) beyond the policy tables: launches that keep failing, a template
that cannot launch, drain and delete, which worker is retired, regions, allowed hours, and what is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, WorkerStatus
from lcm_core.domain.pool_capacity import WaitingDemand, retirement_order
from lcm_core.domain.pools import (
    AllowedHours,
    PoolPhase,
    ScaleDownAction,
    ScalingAction,
    ScalingDecision,
    ScalingTrigger,
)
from lcm_core.domain.worker_launch import LaunchFailure
from lcm_core.domain.workers import WorkerSummary
from tests.worker_controller.domain.pool_cases import (
    CAPACITY,
    HYBRID,
    LAB,
    LAB15,
    NONE,
    NOW,
    SCHEDULED,
    Case,
    check,
    work_for,
    worker,
)
from worker_controller.domain.autoscaling import launch_regions, plan_pool


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
