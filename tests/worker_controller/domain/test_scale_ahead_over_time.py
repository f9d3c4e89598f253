"""`plan_pool` over consecutive evaluations and at the edges of its settings: what one decision leads the next to
do (no flip-flop, no launch every evaluation, no launch-then-terminate churn), stuck warm-ups, outlying lead-time
samples. Each case was a defect found by trying to break the autoscaler; each test states what an operator
expects."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from lcm_core.domain.enums import ServiceStatus
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pool_forecast import LeadTime
from lcm_core.domain.pools import PoolPhase, PoolView, PoolWork, ScalingAction, ScalingConfig
from lcm_core.domain.workers import WorkerSummary
from tests.worker_controller.domain.pool_cases import M5ZN, NOW, worker
from tests.worker_controller.domain.test_scale_ahead import AHEAD, WARM, klass
from worker_controller.domain.autoscaling import plan_pool


def work(scaling: dict, workers: list[WorkerSummary], desired: int, bookings=(), **pool) -> PoolWork:
    view = PoolView(id="p1", name="ccna-pool", lab_track="ccna", template_name="metal", regions=["us-east-1"],
                    scaling=ScalingConfig(**scaling), desired_workers=desired, phase=PoolPhase.READY, version=7,
                    **{"ready_since": NOW - timedelta(hours=1), **pool})
    return PoolWork(pool=view, workers=workers, observed_at=NOW, template_capacity=M5ZN, waiting=WaitingDemand(),
                    bookings=list(bookings), lead_time=LeadTime(), template_cost_per_hour_usd=3.96)


def test_workers_kept_for_their_sessions_are_not_scaled_up_again_by_bookings() -> None:
    """A scale-down whose surplus all hold sessions keeps them (desired 1, 3 counted). No booking at all: the
    next evaluation must not 'scale up for bookings' back to 3 (that undoes the scale-down, restarts the delay
    after add and records a SCALE_UP every 20 min)."""
    lab = {**AHEAD, "max_labs_per_worker": 10, "min_labs_per_worker": 3}
    first = plan_pool(work(lab, [worker("a", sessions=1), worker("b", sessions=1), worker("c", sessions=1)],
                           desired=3))
    assert first.desired_workers == 1, first.decision.reason  # labs_below_min; all three hold a session
    assert first.retire == []
    # The next evaluation: nothing changed but the desired size, no booking.
    second = plan_pool(work(lab, [worker("a", sessions=1), worker("b", sessions=1), worker("c", sessions=1)],
                            desired=1, last_scale_down_at=NOW))
    assert second.decision.action is not ScalingAction.SCALE_UP, (
        second.decision.inputs["rule"], second.desired_workers, second.decision.reason)


def test_the_warm_pool_does_not_terminate_stopped_workers_the_next_class_counts_on() -> None:
    """warm_pool_size 1, three stopped workers: a class in 16 min needs 4 workers; the stopped ones cover it
    by a resume later (nothing is launched cold on their account). Terminating 2 of them now makes the next
    evaluation launch 2 cold (slower, a full provision, for what a resume would have done)."""
    cfg = {**WARM, "warm_pool_size": 1}
    parked = [worker(f"p{i}", state="parked") for i in range(1, 4)]
    plan = plan_pool(work(cfg, [worker("a", sessions=5), *parked], desired=1, bookings=klass(40, 16)))
    assert plan.launch == [], plan.decision.reason
    terminated = set(plan.terminate)
    # What the next evaluation does once those are gone:
    left = [p for p in parked if p.id not in terminated]
    after = plan_pool(work(cfg, [worker("a", sessions=5), *left], desired=1, bookings=klass(40, 16)))
    assert (plan.terminate, after.launch) == ([], []), (
        f"terminated {plan.terminate} now ({plan.decision.reason}); next evaluation launches {len(after.launch)} "
        f"cold: {after.decision.reason}")


def test_a_warm_up_whose_cml_never_comes_up_is_not_kept_running_forever() -> None:
    """A warm-up launch boots once and is stopped when its CML is available. One whose CML fails (service
    error) for 6 hours is never stopped nor replaced: it runs (billed at the running price) and fills the warm
    pool's place."""
    stuck = worker("w1", park_when_ready=True, service_status=ServiceStatus.ERROR, phase="FAILED_CML",
                   license_status="unregistered", getting_ready_by="provision",
                   getting_ready_since=NOW - timedelta(hours=6))
    plan = plan_pool(work({**WARM, "warm_pool_size": 1}, [worker("a", sessions=5), stuck], desired=1))
    assert "id-w1" in [*plan.retire, *plan.terminate], plan.decision.reason


def test_the_demand_sweep_agrees_with_counting_every_booking_at_every_moment() -> None:
    """`demand_steps` sweeps the bookings' edges with running sums (a week of 5000 bookings in milliseconds,
    where scanning every booking at every edge took seconds on the event loop): the same steps as counting."""
    import random

    from lcm_core.domain.pool_forecast import Booking, demand_steps, workers_needed
    rng = random.Random(1)
    bookings = []
    for i in range(40):  # fewer edges than MAX_STEPS: no merged tail
        start = NOW + timedelta(minutes=rng.randrange(-120, 24 * 60))
        bookings.append(Booking(session_id=f"s{i}", timeslot_start=start,
                                timeslot_end=start + timedelta(minutes=rng.choice([60, 90, 120, 180])),
                                cpu_cores=rng.choice([2, 4, 6.5]), memory_gb=rng.choice([8, 16, 24])))
    end = NOW + timedelta(hours=24)
    steps = demand_steps(bookings, NOW, end, labs_per_worker=10, per_worker=M5ZN)
    assert (steps[0].start, steps[-1].end) == (NOW, end)
    for step in steps:
        assert step.end > step.start
        here = [b for b in bookings if b.timeslot_start <= step.start < b.timeslot_end]
        cpu, memory = round(sum(b.cpu_cores for b in here), 3), round(sum(b.memory_gb for b in here), 3)
        assert (step.sessions, step.cpu_cores, step.memory_gb) == (len(here), cpu, memory)
        assert step.workers == workers_needed(len(here), cpu, memory, labs_per_worker=10, per_worker=M5ZN)
    for before, after in pairwise(steps):
        assert before.end == after.start
        assert (before.sessions, before.cpu_cores, before.memory_gb) != (after.sessions, after.cpu_cores,
                                                                         after.memory_gb)


def _launching(name: str, minutes_ago: float) -> WorkerSummary:
    return worker(name, state="launching", getting_ready_by="provision",
                  getting_ready_since=NOW - timedelta(minutes=minutes_ago))


def test_workers_on_their_way_count_when_the_lead_time_is_longer_than_the_look_ahead() -> None:
    """A learned provision lead time of 3 h (one worker of the template waited a day for its licence: until 20
    samples, the p95 is their maximum) with the default 2 h look-ahead. A class in 30 min needs 3 workers; 2
    were launched a minute ago. They are not counted (they 'serve' beyond the horizon, which the look-ahead
    caps), so every evaluation launches 2 more, up to max_workers."""
    lead = LeadTime(provision_seconds=3 * 3600, resume_seconds=480, provision_samples=5)
    pool = work(AHEAD, [worker("a"), _launching("b", 1), _launching("c", 1)], desired=3, bookings=klass(30, 30))
    pool.lead_time = lead
    plan = plan_pool(pool)
    assert plan.launch == [], plan.decision.reason


def test_a_look_ahead_shorter_than_the_provision_lead_time_does_not_launch_every_evaluation() -> None:
    """look_ahead_minutes 10 (allowed: >= 0) with the default 15-min provision lead time: a worker launched 30 s
    ago for a class in 5 min is never counted toward the capped horizon, so the next evaluation launches again."""
    cfg = {**AHEAD, "look_ahead_minutes": 10}
    first = plan_pool(work(cfg, [worker("a")], desired=1, bookings=klass(20, 5)))
    assert len(first.launch) == 1, first.decision.reason
    second = plan_pool(work(cfg, [worker("a"), _launching("b", 0.5)], desired=2, bookings=klass(20, 5)))
    third = plan_pool(work(cfg, [worker("a"), _launching("b", 1), _launching("c", 0.5)], desired=3,
                           bookings=klass(20, 5)))
    assert (second.launch, third.launch) == ([], []), (second.decision.reason, third.decision.reason)


def test_one_worker_left_unlicensed_for_a_day_does_not_become_the_templates_lead_time() -> None:
    """Every worker created from a template starts a provision clock, stopped when it first serves (licensed).
    An operator's worker of the template registered a day later is one sample of 86,400 s; until 20 samples
    the lead time is their maximum, and nothing bounds it (LeadTime.provision_seconds has no upper bound)."""
    from lcm_core.domain.pool_forecast import lead_time
    found = lead_time([900.0, 950.0, 86_400.0], [], default_provision_seconds=900, default_resume_seconds=480)
    assert found.provision_seconds <= 240 * 60, found.describe()


def test_a_class_served_from_the_warm_pool_does_not_churn_launches_and_terminations() -> None:
    """warm_pool_size 2, 2 stopped: a class resumes both. The same plan launches 2 warm-ups to refill the warm
    pool; when the class ends, the 2 resumed workers are retired and, the warm pool being full again,
    terminated. Each class thus launches 2 instances (a full boot each, paid at the running price) and
    terminates 2: launch, then terminate, every cycle."""
    cfg = {**WARM, "min_workers": 1}
    start = plan_pool(work(cfg, [worker("a"), worker("p1", state="parked"), worker("p2", state="parked")],
                           desired=1, bookings=klass(25, 5)))
    assert start.resume == ["id-p1", "id-p2"], start.decision.reason
    refilled = [worker(f"w{i}", state="parked", park_when_ready=True) for i in range(2)]
    end = plan_pool(work(cfg, [worker("a"), worker("p1"), worker("p2"), *refilled], desired=3,
                         last_scale_up_at=NOW - timedelta(hours=4)))
    churn = (len(start.warm_up), len(end.terminate))
    assert churn[0] == 0 or churn[1] == 0, (
        f"launched {churn[0]} warm-ups when the class began and terminated {churn[1]} when it ended: "
        f"{start.decision.reason} / {end.decision.reason}")
