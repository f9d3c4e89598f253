"""bench/autoscaling.py: it drives the controllers' own decision code, its simulated workers' rows say the truth
about them, and a short seeded term keeps the report's invariants (no timing is asserted)."""

from __future__ import annotations

import importlib
import math
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

import lablet_controller.application.scheduling as lablet_scheduling
import lablet_controller.domain.scheduling as lablet_scheduler
import worker_controller.application.autoscaler as autoscaler_loop
import worker_controller.domain.autoscaling as autoscaling_domain
from control_plane_api.domain import pool as cpa_pool
from lablet_controller.domain.decisions import Decision
from lablet_controller.domain.placement import Requirements, candidate_from, rejection
from lcm_core.domain.enums import DesiredStatus
from lcm_core.domain.pool_capacity import MemberRole, member_role, on_its_way, serving
from lcm_core.domain.pools import PoolWork, ScalingConfig
from worker_controller.domain.autoscaling import PoolPlan

if TYPE_CHECKING:
    from autoscaling import Outcome  # bench/autoscaling.py, imported below as `bench.autoscaling`

bench = importlib.import_module("bench.autoscaling")
sim = importlib.import_module("autoscaling_sim")
workload = importlib.import_module("autoscaling_workload")

DAYS, SEED = 2, 7


def test_the_benchmark_decides_with_the_controllers_code() -> None:
    assert sim.PoolAutoscaler is autoscaler_loop.PoolAutoscaler
    assert sim.plan_pool is autoscaler_loop.plan_pool is autoscaling_domain.plan_pool
    assert sim.SchedulingPass is lablet_scheduling.SchedulingPass
    assert sim.Scheduler is lablet_scheduler.Scheduler
    assert sim.WorkerPool is cpa_pool.WorkerPool


@pytest.mark.parametrize(("stage", "then", "role", "serves", "coming"), [
    ("LAUNCHING", None, MemberRole.ACTIVE, False, True),
    ("STARTING", None, MemberRole.ACTIVE, False, True),
    ("BOOTING", None, MemberRole.ACTIVE, False, True),
    ("LICENSING", None, MemberRole.ACTIVE, False, True),
    ("SERVING", None, MemberRole.ACTIVE, True, False),
    ("WARMED", None, MemberRole.WARMING, False, False),
    ("UNLICENSING", DesiredStatus.STOPPED, MemberRole.LEAVING, False, False),
    ("UNLICENSING", DesiredStatus.TERMINATED, MemberRole.GONE, False, False),
    ("STOPPING", DesiredStatus.STOPPED, MemberRole.LEAVING, False, False),
    ("STOPPED", None, MemberRole.PARKED, False, False),
    ("TERMINATING", None, MemberRole.GONE, False, False),
])
def test_a_simulated_workers_row_says_what_it_is(stage: str, then: DesiredStatus | None, role: MemberRole,
                                                 serves: bool, coming: bool) -> None:
    worker = sim.SimWorker(id="w1", name="ccna-001", pool_id="pool-ccna", track="ccna", stage=sim.Stage[stage],
                           asked_at=0.0, then=then, park_when_ready=stage == "WARMED")
    row = worker.summary()
    assert member_role(row) is role
    assert serving(row) is serves
    assert on_its_way(row) is coming
    # The scheduler places a session of the pool's track on exactly the serving ones.
    session = Requirements(cpu_cores=4, memory_gb=12, lab_track="ccna", pool_id="pool-ccna")
    assert (rejection(candidate_from(row, default_port_capacity=100), session, require_license=True) is None) is serves


@pytest.mark.parametrize("kind", ["provision", "resume"])
def test_a_worker_on_its_way_says_since_when_and_how_it_gets_ready(kind: str) -> None:
    """As the control plane's lead clock: what `scale_ahead.serves_by` reads to count it toward a horizon."""
    worker = sim.SimWorker(id="w1", name="ccna-001", pool_id="pool-ccna", track="ccna", stage=sim.Stage.BOOTING,
                           asked_at=600.0, lead_clock=(kind, 600.0))
    row = worker.summary()
    assert row.getting_ready_by == kind
    assert row.getting_ready_since == workload.TERM_START + timedelta(minutes=10)


def test_lcm_is_benchmarked_with_the_default_scaling_settings() -> None:
    """Only the policy, the pool's bounds, the labs per worker, the look-ahead and the warm pool are the
    benchmark's; every other setting (ready_ahead_minutes, the lead-time defaults, cooldowns) is the default."""
    chosen = {"policy", "min_workers", "max_workers", "max_labs_per_worker", "min_labs_per_worker",
              "look_ahead_minutes", "warm_pool_size"}
    defaults = ScalingConfig()
    for lab in workload.LAB_TYPES:
        config = bench.scaling("lcm", lab, peak_workers=5)
        assert config.ready_ahead_minutes == defaults.ready_ahead_minutes
        for name in set(ScalingConfig.model_fields) - chosen:
            assert getattr(config, name) == getattr(defaults, name), name


CALLS = {"plan_pool": 0, "decide": 0}


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    """A short term per policy, counting the calls of the controllers' functions where the controllers look
    them up (the autoscaler's `plan_pool`, the scheduler's `decide`)."""
    real_plan, real_decide = autoscaler_loop.plan_pool, lablet_scheduler.Scheduler.decide

    def plan(work: PoolWork) -> PoolPlan:
        CALLS["plan_pool"] += 1
        return real_plan(work)

    def decide(self: lablet_scheduler.Scheduler, req: Requirements) -> Decision:
        CALLS["decide"] += 1
        return real_decide(self, req)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(autoscaler_loop, "plan_pool", plan)
        patch.setattr(lablet_scheduler.Scheduler, "decide", decide)
        return {policy: bench.simulate(policy, DAYS, SEED) for policy in ("static", "reactive lab count", "lcm")}


def test_a_run_goes_through_plan_pool_and_the_scheduler(outcomes: dict[str, Outcome]) -> None:
    evaluations = sum(out.evaluations for out in outcomes.values())
    placed = sum(1 for out in outcomes.values() for s in out.sessions if s.placed_at is not None)
    assert CALLS["plan_pool"] == evaluations > 2 * 2 * DAYS * 2880  # every 30 s at least, per pool and policy
    assert CALLS["decide"] >= placed > 0


def test_every_session_is_accounted_for(outcomes: dict[str, Outcome]) -> None:
    booked = {b.id: b for b in workload.term(DAYS, SEED)}
    assert booked
    for out in outcomes.values():
        assert sorted(s.id for s in out.sessions) == sorted(booked)
        on_time, total = out.on_time()
        assert total == len(booked)
        assert on_time + len(out.late) == total
        for session in out.sessions:
            b = booked[session.id]
            assert (session.start, session.length) == (b.start, b.end - b.start)
            if session.placed_at is not None:  # placed once due (schedule-ahead) and before its timeslot ended
                assert max(b.booked_at, b.start - sim.SCHEDULE_AHEAD) <= session.placed_at < b.end


def test_on_time_means_the_lab_is_ready_by_the_timeslots_start(outcomes: dict[str, Outcome]) -> None:
    """Placed, then its lab imported and booted (3-8 min, the same per session under every policy), by the
    timeslot's start; the start delay runs from the timeslot's start to the lab ready."""
    low, high = (minutes * 60 for minutes in workload.LAB_BOOT_MINUTES)
    boots: dict[str, float] = {}
    for out in outcomes.values():
        for session in out.sessions:
            assert low <= session.lab_boot <= high
            assert boots.setdefault(session.id, session.lab_boot) == session.lab_boot
            if session.placed_at is None:
                assert not session.on_time
                assert session.delay == session.length
            else:
                ready = session.placed_at + session.lab_boot
                assert session.on_time is (ready <= session.start)
                assert session.delay == max(0.0, ready - session.start)
    # Placed before its timeslot but its lab booting past the start counts late, as the students see it.
    placed_in_time_not_ready = [s for out in outcomes.values() for s in out.sessions
                                if s.placed_at is not None and s.placed_at <= s.start and not s.on_time]
    late_ids = {session_id for out in outcomes.values() for session_id, *_ in out.late}
    assert {s.id for s in placed_in_time_not_ready} <= late_ids


def test_costs_and_hours_are_not_negative(outcomes: dict[str, Outcome]) -> None:
    for out in outcomes.values():
        assert out.cost >= 0
        assert out.stopped_hours >= 0
        assert out.billed_hours >= out.running_hours >= 0


def test_the_static_fleet_is_never_late_and_costs_its_peak_all_term(outcomes: dict[str, Outcome]) -> None:
    static = outcomes["static"]
    bookings = workload.term(DAYS, SEED)
    peak = sum(bench.peak_workers(bookings, lab, sim.SCHEDULE_AHEAD) for lab in workload.LAB_TYPES)
    assert static.late == []
    assert static.launches == static.resumes == static.evaluations == 0
    assert math.isclose(static.billed_hours, peak * DAYS * 24)
    assert math.isclose(static.cost, peak * DAYS * 24 * workload.COST_PER_HOUR_USD)


def test_the_reactive_policies_ignore_bookings(outcomes: dict[str, Outcome]) -> None:
    """look_ahead_minutes 0: the bookings of the next two hours change none of the sampled plans."""
    checks = outcomes["reactive lab count"].plans_changed_by_bookings
    assert checks is not None, "the reactive policy's run did not check its plans against the bookings"
    changed, checked = checks
    assert checked > 0
    assert changed == 0


def test_the_term_is_seeded() -> None:
    assert workload.term(DAYS, SEED) == workload.term(DAYS, SEED)
    assert workload.term(DAYS, SEED) != workload.term(DAYS, SEED + 1)


def test_a_shorter_term_is_the_start_of_a_longer_one() -> None:
    longer = workload.term(DAYS + 5, SEED)
    assert workload.term(DAYS, SEED) == [b for b in longer if b.start < DAYS * workload.DAY]
