"""Pool-first placement (docs/lablet-controller.md, 'Scheduling'): a session whose track has a pool goes to the
pool's workers first (packed onto the one its autoscaler would retire last: test_pool_packing.py); when none
fits it waits for the pool if the pool can still give it room (`pool_room`), else it goes to the workers of no
pool; a track without a pool is scheduled as before."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from lablet_controller.domain.decisions import MAX_REASON, Decision
from lablet_controller.domain.placement import Requirements, WorkerCandidate, rejection
from lablet_controller.domain.scheduling import STRATEGIES, Scheduler
from lablet_controller.domain.track_pools import pool_room, pools_by_track, waiting_reason
from lcm_core.domain.lablets import SchedulingDecision
from lcm_core.domain.pools import PoolView
from tests.lablet_controller.domain.test_scheduling import exhaustive, worker

POOLED = Requirements(cpu_cores=4, memory_gb=8, storage_gb=20, nodes=3, ports=2, lab_track="ccna", pool_id="p1")


def pool(*, policy: str = "capacity_based", desired: int = 2, max_workers: int = 3, workers: int = 2,
         ready: int = 2, **kw: Any) -> PoolView:
    values: dict[str, Any] = {
        "id": "p1", "name": "ccna-pool", "lab_track": "ccna", "template_name": "m5zn", "phase": "ready",
        "desired_workers": desired,
        "capacity": {"workers": workers, "ready": ready, "on_the_way": workers - ready},  # none stuck
        "scaling": {"policy": policy, "min_workers": 0, "max_workers": max_workers}}
    return PoolView.model_validate(values | kw)


def fleet(pool_used_cpu: float = 40, general_used_cpu: float = 0) -> list[WorkerCandidate]:
    """An idle general worker (the best score of the fleet), two busier workers of pool p1 (track ccna),
    a worker of another track."""
    return [worker("g1", used_cpu=general_used_cpu),
            worker("pa", lab_track="ccna", pool_id="p1", used_cpu=pool_used_cpu, labs_count=4),
            worker("pb", lab_track="ccna", pool_id="p1", used_cpu=pool_used_cpu, labs_count=5),
            worker("o1", lab_track="ccnp")]


def decide(the_pool: PoolView | None, workers: list[WorkerCandidate], req: Requirements = POOLED,
           strategy: str = "best_fit") -> Decision:
    scheduler = Scheduler(strategy, rng=random.Random(3))
    scheduler.refresh(workers, [the_pool] if the_pool else [])
    return scheduler.decide(req)


# ---- the rule: a table ---------------------------------------------------------------------------------

FULL = 46  # of 48 cores: a pool worker this busy does not fit the session's 4

RULE = [
    # (case, pool, CPU used on the pool's workers, worker chosen, pool waited for)
    ("a pool worker fits: chosen though the general worker scores higher", pool(), 40, "pb", None),
    ("none fits and the pool can grow: the session waits, nothing placed", pool(), FULL, None, "p1"),
    ("none fits, sized by hand but a member is on its way: waits", pool(policy="none", desired=3, workers=3, ready=2),
     FULL, None, "p1"),
    ("none fits, at its maximum with a member on its way: waits", pool(desired=3, workers=3, ready=2), FULL, None,
     "p1"),
    ("none fits, at its maximum and nothing on the way: a general worker", pool(desired=3, workers=3, ready=3),
     FULL, "g1", None),
    ("none fits and the pool is draining: a general worker", pool(draining=True, phase="draining"), FULL, "g1",
     None),
    ("none fits and the pool is being deleted: a general worker", pool(deleting=True, phase="terminating"), FULL,
     "g1", None),
    ("none fits and the pool failed: a general worker", pool(phase="failed", error="template gone"), FULL, "g1",
     None),
    ("none fits, sized by hand and nothing on the way: a general worker", pool(policy="none"), FULL, "g1", None),
    # A drained (or deleted) pool's workers take no new session (they stop once empty), even before its autoscaler
    # has drained each of them: a session placed there would hold a worker the operator is taking away.
    ("the pool fits but is draining: a general worker", pool(draining=True), 40, "g1", None),
    ("the pool fits but is being deleted: a general worker", pool(deleting=True, phase="terminating"), 40, "g1",
     None),
    ("the pool fits and has failed to grow: its workers still serve", pool(phase="failed", error="template gone"),
     40, "pb", None),
]


@pytest.mark.parametrize(("pool_", "pool_used", "chosen", "waiting"), [case[1:] for case in RULE],
                         ids=[case[0] for case in RULE])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pool_first_rule(strategy: str, pool_: PoolView, pool_used: float, chosen: str | None,
                         waiting: str | None) -> None:
    # Whatever the strategy, a pool's session is packed onto its worker with the most labs (pb holds 5, pa 4).
    decision = decide(pool_, fleet(pool_used), strategy=strategy)
    assert decision.worker_id == chosen
    assert decision.success is (chosen is not None)
    assert decision.waiting_for_pool == waiting


def test_a_track_without_a_pool_is_scheduled_as_before() -> None:
    # Same fleet, no pool known for ccna: the general worker and every ccna worker compete, best score wins.
    assert decide(None, fleet(), POOLED).worker_id == "g1"
    assert decide(None, fleet(), Requirements(cpu_cores=4, memory_gb=8, lab_track="ccna")).worker_id == "g1"
    only_track = [w for w in fleet() if w.id != "g1"]
    assert decide(None, only_track, Requirements(cpu_cores=4, memory_gb=8, lab_track="ccna")).worker_id == "pa"
    # A session of another track never lands on the pool's workers.
    other = decide(pool(), fleet(general_used_cpu=FULL), Requirements(cpu_cores=4, memory_gb=8, lab_track="ccnp"))
    assert other.worker_id == "o1"
    assert other.waiting_for_pool is None


# ---- the reasons --------------------------------------------------------------------------------------


def test_a_waiting_session_says_what_the_pool_is_asked_for_and_why_its_workers_do_not_fit() -> None:
    decision = decide(pool(), fleet(FULL))
    assert decision.reason == ("waiting for capacity: pool ccna-pool (2 of max 3 workers) was asked to scale up; "
                               "none of its workers fits: 2 workers: insufficient cpu (pa, pb)")
    assert decision.candidates_evaluated == 2  # the pool's workers
    assert decision.scores == {}


def test_members_on_their_way_are_named_among_the_refusals() -> None:
    starting = worker("pc", lab_track="ccna", pool_id="p1", status="pending", service_status="unavailable")
    decision = decide(pool(policy="none", desired=3, workers=3, ready=2), [*fleet(FULL), starting])
    assert decision.reason == ("waiting for capacity: pool ccna-pool (3 of max 3 workers, 1 on the way); none of "
                               "its workers fits: 2 workers: insufficient cpu (pa, pb); worker pc: not running")


def test_a_pool_without_workers_yet() -> None:
    decision = decide(pool(desired=0, workers=0, ready=0), [worker("g1")])
    assert decision.waiting_for_pool == "p1"
    assert decision.reason == ("waiting for capacity: pool ccna-pool (0 of max 3 workers) was asked to scale up; "
                               "it has no worker yet")


def test_a_session_placed_beside_a_full_pool_says_so() -> None:
    decision = decide(pool(desired=3, workers=3, ready=3), fleet(FULL))
    assert decision.reason == ("best_fit: chose g1 among 3 candidates (3 examined); pool ccna-pool is at its "
                               "maximum of 3 workers and none of its workers fits")
    assert decision.candidates_evaluated == 3  # the pool's 2, the general 1


def test_nothing_fits_anywhere_says_the_pool_is_full_first() -> None:
    decision = decide(pool(desired=3, workers=3, ready=3), fleet(FULL, general_used_cpu=FULL))
    assert not decision.success
    assert decision.waiting_for_pool is None
    assert decision.reason == ("pool ccna-pool is at its maximum of 3 workers, and no eligible worker among 4: "
                               "3 workers: insufficient cpu (g1, pa, pb); worker o1: other track")


def test_a_session_passed_over_a_draining_pool_says_why() -> None:
    decision = decide(pool(draining=True), fleet())
    assert decision.reason == ("best_fit: chose g1 among 1 candidates (1 examined); pool ccna-pool is draining: "
                               "its workers take no new session")
    nothing = decide(pool(draining=True), fleet(general_used_cpu=FULL))
    assert nothing.reason == ("pool ccna-pool is draining: its workers take no new session, and no eligible worker "
                              "among 4: 2 workers: pool draining (pa, pb); worker g1: insufficient cpu; worker o1: "
                              "other track")


def test_a_pool_placement_names_the_pool() -> None:
    assert decide(pool(), fleet()).reason == ("packing: chose pb among 2 candidates of pool ccna-pool, the one its "
                                              "autoscaler would retire last (1 examined)")


def test_a_long_waiting_reason_fits_the_contract() -> None:
    members = [worker(f"member-with-a-long-name-{n:03d}", lab_track="ccna", pool_id="p1", used_cpu=FULL,
                      license_status=["registered", "evaluation"][n % 2], used_ports=[0, 100][n % 3 == 0])
               for n in range(300)]
    decision = decide(pool(), members)
    assert decision.waiting_for_pool == "p1"
    assert len(decision.reason) <= MAX_REASON
    SchedulingDecision.model_validate(decision.to_json())


def test_the_waiting_decision_is_the_contract() -> None:
    sent = SchedulingDecision.model_validate(decide(pool(), fleet(FULL)).to_json())
    assert (sent.success, sent.worker_id, sent.waiting_for_pool) == (False, None, "p1")
    placed = SchedulingDecision.model_validate(decide(pool(), fleet()).to_json())
    assert placed.waiting_for_pool is None


# ---- workers of no pool, and the pass's memory ---------------------------------------------------------


def test_a_dedicated_worker_of_no_pool_takes_the_track_after_the_pool() -> None:
    dedicated = worker("d1", lab_track="ccna")
    assert decide(pool(), [*fleet(FULL), dedicated]).waiting_for_pool == "p1"  # the pool can grow: not before
    at_max = pool(desired=3, workers=3, ready=3)
    assert decide(at_max, [*fleet(FULL, general_used_cpu=FULL), dedicated]).worker_id == "d1"


def test_a_worker_of_another_pool_is_not_a_fallback() -> None:
    stray = worker("q1", pool_id="p-old")  # a general-looking worker launched for another pool
    decision = decide(pool(desired=3, workers=3, ready=3), [*fleet(FULL, general_used_cpu=FULL), stray])
    assert not decision.success
    assert "worker q1: other pool" in decision.reason


def test_a_waiting_decision_is_remembered_for_the_pass_and_reservations_stay_in_the_pool() -> None:
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("g1"), worker("pa", lab_track="ccna", pool_id="p1", cpu_cores=8, memory_gb=32)],
                      [pool()])
    first = scheduler.decide(POOLED)
    assert first.worker_id == "pa"
    scheduler.reserve("pa", POOLED)
    assert scheduler.decide(POOLED).worker_id == "pa"
    scheduler.reserve("pa", POOLED)
    waiting = scheduler.decide(POOLED)
    assert waiting.waiting_for_pool == "p1"
    assert scheduler.decide(POOLED).reason == waiting.reason
    scheduler.exclude("pa")
    assert scheduler.decide(Requirements(cpu_cores=1, lab_track="ccna", pool_id="p1")).reason.endswith(
        "worker pa: refused reservation")


def most_useful(workers: list[WorkerCandidate], req: Requirements) -> str | None:
    """The specification of packing: every filter over every worker of the pool, then the one the autoscaler
    would retire last: serving (licensed), healthy, licensed, most labs, busiest, last by name, then by id."""
    fits = [w for w in workers if rejection(w, req, require_license=True) is None]
    if not fits:
        return None
    return max(fits, key=lambda w: (w.licensed, w.health_status == "healthy", w.licensed, w.labs_count,
                                    w.cpu_percent or 0.0, w.name or "", w.id)).id


@pytest.mark.parametrize("strategy", ["best_fit", "least_utilized", "least_labs"])
def test_pool_first_chooses_what_an_exhaustive_search_chooses(strategy: str) -> None:
    rng = random.Random(f"pools-{strategy}")
    groups = [(None, None), (None, None), ("ccna", "p1"), ("ccna", "p1"), ("ccna", None), ("ccnp", None)]
    workers = []
    for n in range(60):
        track, pool_id = rng.choice(groups)
        workers.append(worker(f"w{n:03d}", lab_track=track, pool_id=pool_id, name=rng.choice(["a", "b", None]),
                              status=rng.choice(["running"] * 5 + ["stopped"]), cpu_cores=16, memory_gb=64,
                              storage_gb=200, max_nodes=20, port_capacity=12, labs_count=rng.randint(0, 3),
                              health_status=rng.choice(["healthy", "healthy", "degraded"]),
                              cpu_percent=rng.choice([None, 10.0, 55.5])))
    reference = [WorkerCandidate(**{k: getattr(w, k) for k in w.__slots__}) for w in workers]
    by_id = {w.id: w for w in reference}
    the_pool = pool(desired=3, workers=3, ready=3)  # no room: a session falls back once its pool is full
    scheduler = Scheduler(strategy)
    scheduler.refresh(workers, [the_pool])
    for _ in range(300):
        req = Requirements(cpu_cores=rng.choice([1, 2, 4]), memory_gb=rng.choice([2, 4, 8]), storage_gb=10,
                           nodes=rng.randint(1, 4), ports=rng.randint(0, 3), lab_track="ccna", pool_id="p1")
        own = [w for w in reference if w.pool_id == "p1"]
        others = [w for w in reference if w.pool_id is None and w.lab_track in (None, "ccna")]
        expected = most_useful(own, req) or exhaustive(others, req, strategy)
        assert scheduler.decide(req).worker_id == expected
        if expected is not None:
            scheduler.reserve(expected, req)
            by_id[expected].take(req)


# ---- pool_room and the pool of a track -----------------------------------------------------------------


@pytest.mark.parametrize(("the_pool", "why_not"), [
    (pool(), None),
    (pool(policy="lab_count_based", desired=0, workers=0, ready=0), None),
    (pool(policy="none", workers=3, ready=1), None),
    (pool(desired=3, workers=4, ready=3), None),  # at its maximum, a replacement on its way
    (pool(desired=3, workers=3, ready=3), "pool ccna-pool is at its maximum of 3 workers"),
    (pool(policy="none"), "pool ccna-pool is sized by hand (scaling policy none) and has no worker on its way"),
    (pool(draining=True), "pool ccna-pool is draining"),
    (pool(phase="draining"), "pool ccna-pool is draining"),
    (pool(deleting=True, workers=3, ready=1), "pool ccna-pool is being deleted"),
    (pool(phase="terminating"), "pool ccna-pool is being deleted"),
    (pool(phase="terminated"), "pool ccna-pool is terminated"),
    (pool(phase="failed", workers=3, ready=1), "pool ccna-pool has failed"),
])
def test_pool_room(the_pool: PoolView, why_not: str | None) -> None:
    assert pool_room(the_pool) == why_not


def test_waiting_reason_without_a_scale_up() -> None:
    in_flight = pool(desired=3, workers=3, ready=1)
    assert waiting_reason(in_flight, "worker pa: insufficient cpu") == (
        "waiting for capacity: pool ccna-pool (3 of max 3 workers, 2 on the way); none of its workers fits: "
        "worker pa: insufficient cpu")


def test_one_pool_per_track_the_one_not_leaving_first() -> None:
    old = pool(id="p0", deleting=True, phase="terminating")
    new = pool(id="p9")
    other = pool(id="p5", name="ccnp-pool", lab_track="ccnp")
    assert {track: p.id for track, p in pools_by_track([old, new, other]).items()} == {"ccna": "p9", "ccnp": "p5"}
    assert pools_by_track([old])["ccna"].id == "p0"
    assert pools_by_track([]) == {}


def test_a_pool_worker_takes_no_more_sessions_than_its_pool_allows_per_worker() -> None:
    """Five sessions, a pool of one worker at 2 sessions per worker: 2 placed, 3 wait for the pool to grow (the
    worker has the CPU for all five, but the pool sizes itself on sessions per worker)."""
    the_pool = pool(policy="lab_count_based", desired=1, workers=1, ready=1,
                    scaling={"policy": "lab_count_based", "min_workers": 1, "max_workers": 3,
                             "max_labs_per_worker": 2})
    scheduler = Scheduler("best_fit")
    scheduler.refresh([worker("pa", lab_track="ccna", pool_id="p1"), worker("g1")], [the_pool])
    placed, waited = [], []
    for _ in range(5):
        decision = scheduler.decide(POOLED)
        if decision.worker_id:
            scheduler.reserve(decision.worker_id, POOLED)
            placed.append(decision.worker_id)
        else:
            waited.append(decision)
    assert placed == ["pa", "pa"]
    assert [d.waiting_for_pool for d in waited] == ["p1"] * 3
    assert "holds its pool's 2 sessions per worker" in waited[0].reason


NIGHT = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)  # a Monday, 23:00 in Paris
DAYTIME = {"start": "08:00", "end": "18:00", "timezone": "Europe/Paris"}


@pytest.mark.parametrize(("the_pool", "now", "why_not"), [
    (pool(policy="none", desired=3, workers=3, ready=2), None, None),
    (PoolView.model_validate(pool(policy="none", desired=3, workers=3, ready=2).model_dump()
                             | {"capacity": {"workers": 3, "ready": 2, "on_the_way": 0, "stuck": 1}}),
     None, "pool ccna-pool is sized by hand (scaling policy none) and has no worker on its way"),
    (pool(desired=1, workers=1, ready=1, scaling={"policy": "capacity_based", "max_workers": 3,
                                                 "allowed_hours": DAYTIME}), NIGHT,
     "pool ccna-pool does not grow outside its allowed hours (08:00-18:00 Europe/Paris, every day)"),
    (pool(desired=1, workers=1, ready=1, scaling={"policy": "capacity_based", "max_workers": 3,
                                                 "allowed_hours": DAYTIME}), NIGHT.replace(hour=9), None),
    (pool(desired=1, workers=1, ready=1, scaling={"policy": "scheduled", "max_workers": 3,
                                                 "allowed_hours": DAYTIME}), NIGHT,
     "pool ccna-pool is sized by its schedule and has no worker on its way"),
], ids=["a member on its way is waited for", "a stuck member is not", "outside the allowed hours",
        "inside them", "a scheduled pool grows by its schedule, not for demand"])
def test_pool_room_waits_only_for_what_will_come(the_pool: PoolView, now: datetime | None,
                                                 why_not: str | None) -> None:
    assert pool_room(the_pool, now) == why_not
