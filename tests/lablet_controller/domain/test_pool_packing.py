"""Packing a pool's sessions (docs/lablet-controller.md, 'Scheduling'): among the pool's workers that fit and are
under its sessions-per-worker cap, a session goes to the one its autoscaler would retire last (most labs, then
busiest, then by name), whatever the strategy, so a pool with more workers than its sessions need empties the
workers it will retire. The order is the reverse of `lcm_core.domain.pool_capacity.retirement_order`."""

from __future__ import annotations

import random
from typing import Any

import pytest

from lablet_controller.domain.placement import Requirements, WorkerCandidate, candidate_from
from lablet_controller.domain.scheduling import STRATEGIES, Scheduler
from lablet_controller.domain.track_pools import packing_rank
from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import retirement_order
from lcm_core.domain.pools import PoolView
from lcm_core.domain.workers import CapacitySummary, Resources, WorkerSummary
from tests.lablet_controller.domain.test_scheduling import worker

SESSION = Requirements(cpu_cores=4, memory_gb=8, storage_gb=20, nodes=3, ports=2, lab_track="ccna", pool_id="p1")


def pool(max_labs_per_worker: int = 10, **scaling: Any) -> PoolView:
    return PoolView.model_validate({
        "id": "p1", "name": "ccna-pool", "lab_track": "ccna", "template_name": "m5zn", "phase": "ready",
        "desired_workers": 3, "capacity": {"workers": 3, "ready": 3},
        "scaling": {"policy": "lab_count_based", "min_workers": 0, "max_workers": 3,
                    "max_labs_per_worker": max_labs_per_worker, **scaling}})


def member(name: str, sessions: int, **kw: Any) -> WorkerCandidate:
    """A worker of pool p1 holding `sessions` sessions of 4 cores and 8 GB each (their labs counted)."""
    values: dict[str, Any] = {"name": name, "lab_track": "ccna", "pool_id": "p1", "sessions": sessions,
                              "labs_count": sessions, "used_cpu": 4.0 * sessions, "used_memory": 8.0 * sessions,
                              "cpu_percent": 10.0 * sessions}
    return worker(f"id-{name}", **(values | kw))


def general() -> WorkerCandidate:
    """An idle worker of no pool: the best score of any fleet, never chosen while the pool has room."""
    return worker("g1", name="g1")


def place(scheduler: Scheduler, count: int) -> list[str | None]:
    """Place `count` sessions in one pass (each reservation counted), naming the worker each went to."""
    chosen: list[str | None] = []
    for _ in range(count):
        decision = scheduler.decide(SESSION)
        if decision.worker_id is not None:
            scheduler.reserve(decision.worker_id, SESSION)
            chosen.append(scheduler.workers[decision.worker_id].label)
        else:
            chosen.append(None)
    return chosen


# ---- the rule: three workers holding 0, 1 and 2 sessions -----------------------------------------------

FULL_CPU = {"cpu_cores": 10.0}  # 2 sessions hold 8 of its 10 cores: a third does not fit

PACKING = [
    # (case, sessions per worker allowed by the pool, what differs on the workers, the worker chosen)
    ("the one holding 2, under the cap of 3", 3, {}, "cml-2"),
    ("the one holding 1 when the one holding 2 is at the cap of 2", 2, {}, "cml-1"),
    ("the empty one when both others are at the cap of 1", 1, {}, "cml-0"),
    ("the one holding 1 when the one holding 2 lacks the CPU", 3, {"cml-2": FULL_CPU}, "cml-1"),
    ("the empty one when the others lack the memory", 3,
     {"cml-2": {"memory_gb": 20.0}, "cml-1": {"memory_gb": 10.0}}, "cml-0"),
    ("the one holding 1 when the one holding 2 is degraded (the autoscaler retires it sooner)", 3,
     {"cml-2": {"health_status": "degraded"}}, "cml-1"),
    ("equal labs: the busier", 3, {"cml-1": {"labs_count": 2, "cpu_percent": 90.0}}, "cml-1"),
    ("equal labs, equally busy: the last by name", 3, {"cml-1": {"labs_count": 2, "cpu_percent": 20.0}}, "cml-2"),
]


@pytest.mark.parametrize(("cap", "differences", "chosen"), [case[1:] for case in PACKING],
                         ids=[case[0] for case in PACKING])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_session_is_packed_onto_the_worker_retired_last(strategy: str, cap: int,
                                                          differences: dict[str, dict[str, Any]],
                                                          chosen: str) -> None:
    workers = [member(name, held, **differences.get(name, {}))
               for name, held in (("cml-0", 0), ("cml-1", 1), ("cml-2", 2))]
    scheduler = Scheduler(strategy, rng=random.Random(5))
    scheduler.refresh([*workers, general()], [pool(cap)])
    decision = scheduler.decide(SESSION)
    assert scheduler.workers[decision.worker_id or ""].label == chosen, decision.reason
    assert decision.strategy == strategy
    assert decision.reason.startswith(f"packing: chose id-{chosen} among 3 candidates of pool ccna-pool, the one "
                                      "its autoscaler would retire last")


def test_an_unlicensed_worker_is_filled_last_as_it_is_retired_first() -> None:
    workers = [member("cml-0", 0), member("cml-9", 5, license_status="evaluation")]
    scheduler = Scheduler("best_fit", require_license=False)
    scheduler.refresh(workers, [pool()])
    assert place(scheduler, 1) == ["cml-0"]


# ---- after a class ends ----------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_after_a_class_ends_new_sessions_do_not_spread_onto_the_emptied_worker(strategy: str) -> None:
    """A class of 4 ended on cml-a; cml-b holds 3 sessions and cml-c 1, at most 4 per worker. The next 4
    sessions fill cml-b then cml-c, so cml-a stays empty for the autoscaler to retire; only the 5th, with
    both full, goes to it. Any strategy would have preferred the empty cml-a (the least used, the best score)."""
    workers = [member("cml-a", 0), member("cml-b", 3), member("cml-c", 1)]
    scheduler = Scheduler(strategy, rng=random.Random(7))
    scheduler.refresh([*workers, general()], [pool(4)])
    assert place(scheduler, 4) == ["cml-b", "cml-c", "cml-c", "cml-c"]
    assert place(scheduler, 1) == ["cml-a"]


def test_the_next_pass_keeps_packing_and_leaves_the_empty_worker_alone() -> None:
    scheduler = Scheduler("least_utilized")  # a strategy that spreads sessions outside pools
    scheduler.refresh([member("cml-a", 0), member("cml-b", 2), general()], [pool(4)])
    assert place(scheduler, 1) == ["cml-b"]
    # The next pass reads the fleet again: cml-b holds 3 now.
    scheduler.refresh([member("cml-a", 0), member("cml-b", 3), general()], [pool(4)])
    assert place(scheduler, 2) == ["cml-b", "cml-a"]


def test_workers_of_no_pool_keep_the_strategy() -> None:
    """A track without a pool, and a pool's fallback to the workers of no pool, are placed by the strategy:
    least_labs takes the general worker with the fewest labs, not the fullest."""
    fleet = [worker("g1", labs_count=3, used_cpu=12), worker("g2", labs_count=0), worker("g3", labs_count=1)]
    scheduler = Scheduler("least_labs")
    scheduler.refresh(fleet)
    assert scheduler.decide(Requirements(cpu_cores=4, memory_gb=8)).worker_id == "g2"
    # The pool is at its maximum and its one worker at its cap of 1: the session falls back to the strategy.
    scheduler.refresh([*fleet, member("cml-a", 1)], [pool(1)])
    fallback = scheduler.decide(SESSION)
    assert fallback.worker_id == "g2"
    assert fallback.reason.startswith("least_labs: chose g2")


# ---- the agreement with the autoscaler ---------------------------------------------------------------------


def row(n: int, rng: random.Random) -> WorkerSummary:
    """A serving-state member of pool p1 (running, CML available) with a random health, licence, load and name,
    so that the orders meet their ties (same labs, same CPU, same name)."""
    registered = rng.random() < 0.8
    sessions = rng.randint(0, 3)
    labs = rng.choice([sessions, sessions, sessions + 1, None])
    return WorkerSummary(
        id=f"w{n:03d}", name=rng.choice(["cml-a", "cml-b", "cml-c", ""]), pool_id="p1", lab_track="ccna",
        status=WorkerStatus.RUNNING, desired_status=DesiredStatus.RUNNING, service_status=ServiceStatus.AVAILABLE,
        health_status=rng.choice(["healthy", "healthy", "degraded"]),
        license_status=LicenseStatus.REGISTERED if registered else LicenseStatus.UNREGISTERED,
        phase=("ACTIVE" if sessions else "READY") if registered else "READY_UNLICENSED",
        sessions=sessions, labs_count=labs, cpu_percent=rng.choice([None, 5.0, 5.0, 40.0, 80.0]),
        capacity=CapacitySummary(declared=Resources(cpu_cores=48, memory_gb=192, storage_gb=500, max_nodes=200)))


@pytest.mark.parametrize("seed", range(5))
def test_the_scheduler_fills_the_pool_in_the_reverse_of_the_autoscalers_retirement_order(seed: int) -> None:
    """On the same workers, the order in which the scheduler prefers a pool's workers (choose one, leave it
    out, choose again) is exactly the autoscaler's retirement order backwards."""
    rng = random.Random(seed)
    rows = [row(n, rng) for n in range(40)]
    retired_first = [r.id for r in sorted(rows, key=retirement_order)]

    scheduler = Scheduler(rng.choice(STRATEGIES), require_license=False)  # unlicensed ones take small labs
    scheduler.refresh([candidate_from(r, default_port_capacity=100) for r in rows], [pool()])
    preferred = []
    for _ in rows:
        decision = scheduler.decide(SESSION)
        assert decision.worker_id is not None, decision.reason
        preferred.append(decision.worker_id)
        scheduler.exclude(decision.worker_id)
    assert preferred == retired_first[::-1]


def test_packing_rank_is_the_retirement_order_of_the_same_row() -> None:
    rng = random.Random("ranks")
    for n in range(200):
        summary = row(n, rng)
        assert packing_rank(candidate_from(summary, default_port_capacity=100)) == retirement_order(summary)
