"""The autoscaler's decision (`plan_pool`), table by table: one table per policy. Each row is a pool as the
control plane answers it and what the autoscaler must do about it (`pool_cases`); convergence, launch
failures, drain and delete, and what is recorded are in `test_autoscaling_decisions.py`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lcm_core.domain.enums import LicenseStatus, ServiceStatus
from lcm_core.domain.pools import (
    PoolPhase,
    ScalingAction,
    ScalingDecision,
    ScalingTrigger,
)
from tests.worker_controller.domain.pool_cases import (
    CAPACITY,
    FULL_CPU,
    HYBRID,
    LAB,
    LAB15,
    NONE,
    NOW,
    PARIS_DAY,
    RECENTLY,
    SCHEDULED,
    Case,
    check,
    worker,
)

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
