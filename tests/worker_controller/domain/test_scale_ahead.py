"""Scaling ahead of booked sessions, the warm pool and safe scale-down (`plan_pool` with `scale_ahead`), table
by table. Each row is a pool with its bookings as the control plane answers it, and what the autoscaler must do.

The pool: lab-count based, 10 labs per worker, a 2-hour look-ahead, the default lead times (provision 15 min,
resume 8 min, plus the 2-minute margin), and workers wanted ready when a timeslot starts (`ready_ahead_minutes`
0; the cases of the default, 15 minutes earlier, come last)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pool_forecast import Booking, LeadTime
from lcm_core.domain.pools import PoolPhase, PoolView, PoolWork, ScaleDownAction, ScalingAction, ScalingConfig
from lcm_core.domain.workers import WorkerSummary
from tests.worker_controller.domain.pool_cases import M5ZN, NOW, worker
from worker_controller.domain.autoscaling import plan_pool

AHEAD = {"policy": "lab_count_based", "min_workers": 1, "max_workers": 6, "max_labs_per_worker": 10,
         "min_labs_per_worker": 3, "look_ahead_minutes": 120, "ready_ahead_minutes": 0}
WARM = {**AHEAD, "warm_pool_size": 2}
PRICE = 3.9641


def klass(sessions: int, in_minutes: float, hours: float = 3, **extra: Any) -> list[Booking]:
    """`sessions` booked for a timeslot starting `in_minutes` from now."""
    start = NOW + timedelta(minutes=in_minutes)
    return [Booking(session_id=f"s{in_minutes}-{i}", timeslot_start=start, timeslot_end=start + timedelta(hours=hours),
                    cpu_cores=4, memory_gb=16, **extra) for i in range(sessions)]


@dataclass
class Case:
    name: str
    scaling: dict[str, Any]
    workers: list[WorkerSummary]
    bookings: list[Booking]
    desired: int
    pool: dict[str, Any] = field(default_factory=dict)
    lead: LeadTime = field(default_factory=LeadTime)
    template_found: bool = True
    # expected
    size: int | None = None
    action: ScalingAction = ScalingAction.NONE
    rule: str | None = None
    launch: int = 0
    resume: list[str] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)
    terminate: list[str] = field(default_factory=list)
    warm_up: int = 0
    retire_then: ScaleDownAction | None = None
    reason_has: str = ""


def work_for(case: Case) -> PoolWork:
    pool = PoolView(id="p1", name="ccna-pool", lab_track="ccna", template_name="metal", regions=["us-east-1"],
                    scaling=ScalingConfig(**case.scaling), desired_workers=case.desired, phase=PoolPhase.READY,
                    version=7, **{"ready_since": NOW - timedelta(hours=1), **case.pool})
    return PoolWork(pool=pool, workers=case.workers, observed_at=NOW, template_capacity=M5ZN,
                    waiting=WaitingDemand(), bookings=case.bookings, lead_time=case.lead,
                    template_cost_per_hour_usd=PRICE, template_found=case.template_found)


CASES = [
    # ------------------------------------------------------------------ scale ahead
    Case("a class beyond the provision lead time: nothing yet", AHEAD, [worker("a")], klass(30, 60), desired=1,
         rule="steady"),
    Case("a class within the provision lead time, nothing stopped: its workers are launched now", AHEAD,
         [worker("a")], klass(30, 16), desired=1, size=3, action=ScalingAction.SCALE_UP, rule="bookings_ahead",
         launch=2, reason_has="3 within the provision lead time (15.0 min), 1 will serve by then and 0 stopped "
                              "to resume: 2 to launch now"),
    Case("stopped workers will be resumed in time: nothing launched yet", AHEAD,
         [worker("a"), worker("p1", state="parked"), worker("p2", state="parked")], klass(30, 16), desired=1,
         rule="steady"),
    Case("a class within the resume lead time: stopped workers are resumed", AHEAD,
         [worker("a"), worker("p1", state="parked"), worker("p2", state="parked")], klass(30, 9), desired=1,
         size=3, action=ScalingAction.SCALE_UP, rule="bookings_ahead", resume=["id-p1", "id-p2"],
         reason_has="bookings need 3 worker(s) within the resume lead time (8.0 min)"),
    Case("more than the stopped workers cover: the rest is launched cold now, the stopped kept for later", AHEAD,
         [worker("a"), worker("p1", state="parked"), worker("p2", state="parked")], klass(40, 16), desired=1,
         size=2, action=ScalingAction.SCALE_UP, launch=1, resume=[]),
    Case("within the resume lead time and beyond the stopped: resume them and launch the rest", AHEAD,
         [worker("a"), worker("p1", state="parked"), worker("p2", state="parked")], klass(40, 9), desired=1,
         size=4, action=ScalingAction.SCALE_UP, launch=1, resume=["id-p1", "id-p2"]),
    Case("the scale-up cooldown does not hold booked sessions", AHEAD, [worker("a")], klass(30, 16), desired=1,
         pool={"last_scale_up_at": NOW - timedelta(minutes=2)}, size=3, action=ScalingAction.SCALE_UP, launch=2),
    Case("workers on their way count: nothing launched twice", AHEAD,
         [worker("a"), worker("b", state="launching"), worker("c", state="launching")], klass(30, 16), desired=3,
         rule="bookings_keep"),
    Case("a stuck worker serves nobody: the class needs workers besides it", AHEAD,
         [worker("a"), worker("b", service_status="error", phase="FAILED_CML")], klass(20, 16), desired=2,
         size=3, action=ScalingAction.SCALE_UP, launch=1, reason_has="1 stuck"),
    Case("bookings beyond the maximum: held at the maximum", AHEAD, [worker("a")], klass(80, 16), desired=1,
         size=6, action=ScalingAction.SCALE_UP, launch=5, reason_has="held at the maximum of 6"),
    Case("a learned, longer provision lead time launches earlier", AHEAD, [worker("a")], klass(30, 25), desired=1,
         lead=LeadTime(provision_seconds=1800, resume_seconds=480, provision_samples=12), size=3,
         action=ScalingAction.SCALE_UP, launch=2, reason_has="(30.0 min)"),
    Case("a class already running counts like one booked", AHEAD, [worker("a", sessions=10)],
         klass(10, -30) + klass(15, 5), desired=1, size=3, action=ScalingAction.SCALE_UP, launch=2),
    # ------------------------------------------------------------------ workers on their way, ready ahead
    Case("a worker launched a moment ago will not serve within the resume lead time: resume one besides it", AHEAD,
         [worker("a"), worker("b", state="launching", getting_ready_by="provision",
                              getting_ready_since=NOW - timedelta(minutes=2)), worker("p1", state="parked")],
         klass(30, 9), desired=2, size=3, action=ScalingAction.SCALE_UP, resume=["id-p1"],
         reason_has="bookings need 3 worker(s) within the resume lead time (8.0 min) and 1 will serve by then"),
    Case("a worker launched long enough ago will serve in time: nothing more", AHEAD,
         [worker("a"), worker("b", state="launching", getting_ready_by="provision",
                              getting_ready_since=NOW - timedelta(minutes=10)), worker("p1", state="parked")],
         klass(20, 9), desired=2, rule="bookings_keep"),
    Case("a resumed worker counts by the resume lead time", AHEAD,
         [worker("a"), worker("b", state="launching", getting_ready_by="resume", getting_ready_since=NOW)],
         klass(20, 9), desired=2, rule="bookings_keep"),
    Case("ready ahead (the default 15 min): a class in 30 min is launched for now",
         {**AHEAD, "ready_ahead_minutes": 15}, [worker("a")], klass(30, 30), desired=1, size=3,
         action=ScalingAction.SCALE_UP, launch=2, reason_has="ready 15 min before each timeslot"),
    Case("ready ahead: a class starting as another ends needs room for both while it is placed",
         {**AHEAD, "ready_ahead_minutes": 15}, [worker(n, sessions=10) for n in "abc"],
         klass(30, -90, hours=2) + klass(30, 30), desired=3, size=6, action=ScalingAction.SCALE_UP, launch=3),
    Case("ready ahead: a class in 40 min is not yet", {**AHEAD, "ready_ahead_minutes": 15}, [worker("a")],
         klass(30, 40), desired=1, rule="steady"),
    # ------------------------------------------------------------------ policies that do not count bookings
    Case("no look-ahead: the reactive policy ignores bookings", {**AHEAD, "look_ahead_minutes": 0},
         [worker("a")], klass(30, 5), desired=1, rule="steady"),
    Case("policy none ignores bookings", {**AHEAD, "policy": "none"}, [worker("a")], klass(30, 5), desired=1,
         rule="manual"),
    # ------------------------------------------------------------------ safe scale-down
    Case("a class within the provision lead time keeps its workers", AHEAD,
         [worker("a"), worker("b"), worker("c")], klass(30, 12), desired=3, rule="bookings_keep",
         reason_has="the sessions booked within the provision lead time need 3"),
    Case("only the workers the next class does not need are retired", AHEAD,
         [worker("a"), worker("b"), worker("c")], klass(20, 12), desired=3, size=2,
         action=ScalingAction.SCALE_DOWN, retire=["id-a"]),
    Case("a class after the provision lead time does not keep idle workers", AHEAD,
         [worker("a"), worker("b"), worker("c")], klass(30, 60), desired=3, size=1,
         action=ScalingAction.SCALE_DOWN, retire=["id-a", "id-b"], retire_then=ScaleDownAction.STOP),
    Case("a worker with a session booked on it is not retired", AHEAD,
         [worker("a"), worker("b"), worker("c")], klass(1, 60, worker_id="id-a"), desired=3, size=1,
         action=ScalingAction.SCALE_DOWN, retire=["id-b", "id-c"]),
    Case("scale-down waits the delay after the last scale-up", AHEAD, [worker("a"), worker("b"), worker("c")],
         [], desired=3, pool={"last_scale_up_at": NOW - timedelta(minutes=3)}, rule="cooldown_down",
         reason_has="the delay after the last scale-up has 7.0 min left"),
    # ------------------------------------------------------------------ the warm pool
    Case("retired workers go to the warm pool while it has room", WARM,
         [worker("a"), worker("b"), worker("c")], [], desired=3, size=1, action=ScalingAction.SCALE_DOWN,
         retire=["id-a", "id-b"], retire_then=ScaleDownAction.STOP, reason_has="warm pool of 2: 2 stopped"),
    Case("beyond the warm pool, retired workers are terminated", WARM,
         [worker("a"), worker("b"), worker("c"), worker("p1", state="parked")], [], desired=3, size=1,
         action=ScalingAction.SCALE_DOWN, retire=["id-a"], terminate=["id-b"],
         reason_has="warm pool of 2: 1 stopped, 1 terminated"),
    Case("workers on their way to stopped count in the warm pool", WARM,
         [worker("a"), worker("b"), worker("c"), worker("l1", state="leaving"), worker("l2", state="leaving")], [],
         desired=3, size=1, action=ScalingAction.SCALE_DOWN, terminate=["id-a", "id-b"]),
    Case("stopped workers beyond the warm pool are terminated", {**WARM, "warm_pool_size": 1},
         [worker("a", sessions=5), *(worker(f"p{i}", state="parked") for i in range(1, 4))], [], desired=1,
         action=ScalingAction.SCALE_DOWN, rule="warm_pool", terminate=["id-p3", "id-p2"],
         reason_has="3 stopped or warming, beyond the warm pool of 1: terminating 2"),
    Case("an empty warm pool is filled: workers launched to boot once and stop", WARM, [worker("a", sessions=5)],
         [], desired=1, rule="warm_pool", warm_up=2,
         reason_has="warm pool of 2 has 0: launching 2 to boot once and stop"),
    Case("workers warming up count in the warm pool", WARM,
         [worker("a", sessions=5), worker("p1", state="parked"), worker("w1", state="launching", park_when_ready=True)],
         [], desired=1, rule="steady"),
    Case("a warmed-up worker is stopped into the warm pool once its CML is available", WARM,
         [worker("a", sessions=5), worker("p1", state="parked"),
          worker("w1", park_when_ready=True, license_status="unregistered", phase="READY_UNLICENSED")],
         [], desired=1, rule="warm_pool", retire=["id-w1"], retire_then=ScaleDownAction.STOP,
         reason_has="1 warmed up (CML available): stopping into the warm pool"),
    Case("a worker warming up is not counted toward the size; no warm-up above the minimum (the class's workers "
         "return to the warm pool when it ends)", WARM,
         [worker("a"), worker("w1", state="launching", park_when_ready=True), worker("p1", state="parked")],
         klass(20, 9), desired=1, size=2, action=ScalingAction.SCALE_UP, resume=["id-p1"], warm_up=0),
    Case("no warm-up while the template cannot launch", WARM, [worker("a", sessions=5)], [], desired=1,
         template_found=False, rule="steady"),
    Case("without a warm pool (any more), a worker warming up for one is terminated", AHEAD,
         [worker("a", sessions=5), worker("w1", state="launching", park_when_ready=True)], [], desired=1,
         rule="warm_pool", action=ScalingAction.SCALE_DOWN, terminate=["id-w1"],
         reason_has="no warm pool: terminating 1 worker(s) warming up for one"),
    Case("a warm pool of 0 terminates every retired worker", {**WARM, "warm_pool_size": 0},
         [worker("a"), worker("b")], [], desired=2, size=1, action=ScalingAction.SCALE_DOWN, terminate=["id-a"]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_scaling_ahead(case: Case) -> None:
    plan = plan_pool(work_for(case))
    d = plan.decision
    assert plan.desired_workers == (case.size if case.size is not None else case.desired), d.reason
    assert d.action is case.action, d.reason
    if case.rule is not None:
        assert d.inputs["rule"] == case.rule, d.reason
    assert len(plan.launch) == case.launch, d.reason
    assert plan.resume == case.resume, d.reason
    assert plan.retire == case.retire, d.reason
    assert plan.terminate == case.terminate, d.reason
    assert len(plan.warm_up) == case.warm_up, d.reason
    if case.retire_then is not None:
        assert plan.retire_then is case.retire_then
    assert case.reason_has in d.reason
    assert d.retired == [*case.retire, *case.terminate]


def test_a_decision_records_the_forecast_lead_time_and_cost() -> None:
    case = Case("", AHEAD, [worker("a")], klass(30, 16) + klass(12, 90, hours=0.25), desired=1)
    plan = plan_pool(work_for(case))
    d = plan.decision
    assert [(s.sessions, s.workers) for s in d.demand] == [(0, 0), (30, 3), (42, 5), (30, 3)]
    assert d.demand[1].start == NOW + timedelta(minutes=16)
    assert d.lead_time == LeadTime()
    assert d.inputs["forecast_workers"] == 3
    assert d.inputs["forecast_peak_workers"] == 5
    assert d.inputs["forecast_now_workers"] == 0
    assert (d.inputs["lead_provision_minutes"], d.inputs["lead_resume_minutes"]) == (15.0, 8.0)
    assert d.inputs["cost_per_hour_usd"] == round(3 * PRICE, 4)
    assert d.inputs["booked"] == 42
    evaluation = plan.evaluation(work_for(case).pool)
    assert evaluation is not None
    assert evaluation.decision is not None
    assert evaluation.decision.demand == d.demand


def test_a_reactive_decision_records_its_cost_but_no_forecast() -> None:
    case = Case("", {**AHEAD, "look_ahead_minutes": 0}, [worker("a")], klass(30, 16), desired=1)
    d = plan_pool(work_for(case)).decision
    assert d.demand == []
    assert d.lead_time is None
    assert "forecast_workers" not in d.inputs
    assert d.inputs["cost_per_hour_usd"] == PRICE


def test_the_warm_pool_terminate_list_reaches_the_control_plane() -> None:
    case = Case("", WARM, [worker("a"), worker("b"), worker("c"), worker("p1", state="parked")], [], desired=3)
    work = work_for(case)
    evaluation = plan_pool(work).evaluation(work.pool)
    assert evaluation is not None
    assert (evaluation.retire, evaluation.terminate, evaluation.retire_then) == (["id-a"], ["id-b"],
                                                                                 ScaleDownAction.STOP)
