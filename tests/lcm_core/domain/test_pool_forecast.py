"""The forecast shared by the autoscaler, the control plane and the benchmark: demand steps from bookings, the
workers they need, and lead times learned from measurements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lcm_core.domain.pool_forecast import (
    LEAD_TIME_WINDOW,
    MAX_STEPS,
    Booking,
    demand_steps,
    lead_time,
    p95,
    peak_workers,
    workers_needed,
)
from lcm_core.domain.workers import Resources

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
M5ZN = Resources(cpu_cores=48, memory_gb=192)


def booked(n: int, start_min: float, end_min: float, cpu: float = 4, memory: float = 16) -> list[Booking]:
    return [Booking(session_id=f"{start_min}-{i}", timeslot_start=NOW + timedelta(minutes=start_min),
                    timeslot_end=NOW + timedelta(minutes=end_min), cpu_cores=cpu, memory_gb=memory)
            for i in range(n)]


@pytest.mark.parametrize(("sessions", "cpu", "memory", "expected"), [
    (0, 0, 0, 0),
    (10, 40, 160, 1),   # 10 per worker, and they fit
    (11, 44, 176, 2),   # one more than a worker holds
    (6, 60, 60, 2),     # the cores need a second worker before the count does
    (2, 8, 400, 3),     # memory-bound
    (3, 96.0000001, 0, 2),  # a float's noise above 2 workers' cores does not need a third
])
def test_workers_needed(sessions: int, cpu: float, memory: float, expected: int) -> None:
    assert workers_needed(sessions, cpu, memory, labs_per_worker=10, per_worker=M5ZN) == expected


def test_workers_needed_without_a_known_capacity_counts_sessions() -> None:
    assert workers_needed(25, 500, 5000, labs_per_worker=10, per_worker=Resources()) == 3


def test_demand_steps_follow_the_bookings_and_merge_equal_neighbours() -> None:
    bookings = booked(30, 60, 240) + booked(12, 120, 180) + booked(5, -30, 30) + booked(1, 600, 660)
    steps = demand_steps(bookings, NOW, NOW + timedelta(hours=4), labs_per_worker=10, per_worker=M5ZN)
    assert [(s.start - NOW, s.end - NOW, s.sessions, s.workers) for s in steps] == [
        (timedelta(0), timedelta(minutes=30), 5, 1),
        (timedelta(minutes=30), timedelta(minutes=60), 0, 0),
        (timedelta(minutes=60), timedelta(minutes=120), 30, 3),
        (timedelta(minutes=120), timedelta(minutes=180), 42, 5),
        (timedelta(minutes=180), timedelta(minutes=240), 30, 3),
    ]
    assert steps[3].cpu_cores == 168
    assert peak_workers(steps, NOW, NOW + timedelta(minutes=59)) == 1
    assert peak_workers(steps, NOW, NOW + timedelta(minutes=60)) == 3  # a step starting at the horizon counts
    assert peak_workers(steps, NOW + timedelta(minutes=30), NOW + timedelta(minutes=45)) == 0
    assert demand_steps(bookings, NOW, NOW, labs_per_worker=10, per_worker=M5ZN) == []


def test_demand_steps_are_bounded_and_keep_the_peak() -> None:
    bookings = [b for i in range(MAX_STEPS + 20) for b in booked(1 + i % 7, i * 10, i * 10 + 5)]
    steps = demand_steps(bookings, NOW, NOW + timedelta(days=1), labs_per_worker=2, per_worker=M5ZN)
    assert len(steps) == MAX_STEPS
    assert steps[-1].end == NOW + timedelta(days=1)
    assert steps[-1].workers == 4  # the most any merged step needed (7 sessions at 2 per worker)


def test_lead_time_is_the_default_then_at_least_it_then_the_p95() -> None:
    default = {"default_provision_seconds": 900.0, "default_resume_seconds": 480.0}
    assert lead_time([], [], **default).provision_seconds == 900
    two = lead_time([1200, 1300], [], **default)
    assert (two.provision_seconds, two.provision_samples, two.provision_measured) == (900, 2, False)
    # A few measurements longer than the default are believed at once; shorter ones not until there are 20.
    assert lead_time([1200, 1300, 1250], [], **default).provision_seconds == 1300
    assert lead_time([300, 320, 310], [100, 120, 110], **default).provision_seconds == 900
    many = [300.0 + i for i in range(LEAD_TIME_WINDOW - 2)] + [700.0, 800.0]  # the 19th of 20 is 700
    learned = lead_time([5000.0, *many], [], **default)  # the oldest falls out of the window
    assert (learned.provision_seconds, learned.provision_measured) == (700.0, True)
    assert (learned.seconds("resume"), learned.seconds(None)) == (480, 700.0)
    assert "p95 of 20" in learned.describe()
    assert "resume 8.0 min (default)" in learned.describe()


def test_p95_is_the_nearest_rank() -> None:
    assert p95([5]) == 5
    assert p95(list(range(1, 101))) == 95
    assert p95([3, 1, 2]) == 3
