"""The scheduling pass over the in-memory control plane: one worker (and pool) read per pass, no over-commit
within a pass, a refused reservation moves on to the next candidate, "no candidate" recorded once per reason,
a track's pool first and a session waiting for it recorded with the pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lablet_controller.application.scheduling import SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.domain.pools import PoolView
from lcm_core.domain.workers import WorkerSummary
from tests.lablet_controller.application.conftest import FakeControlPlane, GatewayAdapter


class CountingGateway(GatewayAdapter):
    def __init__(self, fake: FakeControlPlane) -> None:
        super().__init__(fake)
        self.worker_reads = 0
        self.pool_reads = 0

    async def workers(self) -> list[WorkerSummary]:
        self.worker_reads += 1
        return await self._fake.workers()

    async def pools(self) -> list[PoolView]:
        self.pool_reads += 1
        return await self._fake.pools()


def worker(wid: str, cpu: float, **kw: Any) -> dict[str, Any]:
    return {"id": wid, "name": f"cml-{wid}", "status": "running", "service_status": "available",
            "health_status": "healthy", "license_status": "registered",
            "capacity": {"declared": {"cpu_cores": cpu, "memory_gb": 64, "storage_gb": 500, "max_nodes": 50}}, **kw}


def setup(*workers: dict[str, Any], sessions: int = 3) -> tuple[FakeControlPlane, CountingGateway]:
    cp = FakeControlPlane()
    definition = cp.add_definition()
    assert definition.resource_requirements.cpu_cores == 3  # 2 x iosv + ubuntu (the unmanaged switch: 0)
    for n in range(sessions):
        cp.add_session(f"s{n}")
    for w in workers:
        cp.workers_[w["id"]] = w
    return cp, CountingGateway(cp)


async def test_one_pass_places_everything_without_over_committing() -> None:
    cp, gateway = setup(worker("big", 6), worker("small", 3), sessions=3)
    scheduled: list[str] = []
    pass_ = SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100, on_scheduled=scheduled.append)
    outcome = await pass_.run_once()
    assert gateway.worker_reads == 1
    assert outcome.scheduled == 3
    placed = [cp.sessions[f"s{n}"].worker_id for n in range(3)]
    assert placed.count("big") == 2
    assert placed.count("small") == 1
    assert scheduled == ["s0", "s1", "s2"]
    assert all(cp.sessions[f"s{n}"].allocated_ports for n in range(3))
    assert all(d.success and d.candidates_evaluated >= 1 for d in cp.decisions)


async def test_refused_reservation_tries_the_next_candidate() -> None:
    cp, gateway = setup(worker("a", 48), worker("b", 48), sessions=1)
    cp.refuse_workers.add("a")  # best by tie-break, but the CPA says it no longer fits
    outcome = await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100).run_once()
    assert outcome.conflicts == 1
    assert cp.sessions["s0"].worker_id == "b"


async def test_no_candidate_stays_pending_with_the_reason_recorded_once() -> None:
    cp, gateway = setup(worker("a", 48, status="stopped"), worker("b", 2), sessions=1)
    pass_ = SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100)
    outcome = await pass_.run_once()
    assert outcome.no_candidate == 1
    session = cp.sessions["s0"]
    assert session.status is S.PENDING
    assert session.pending_reason == ("no eligible worker among 2: worker cml-b: insufficient cpu; "
                                      "worker cml-a: not running")
    assert len(cp.decisions) == 1
    assert not cp.decisions[0].success
    await pass_.run_once()
    assert len(cp.decisions) == 1  # same reason: nothing written again


async def test_ports_count_against_the_port_range() -> None:
    cp, gateway = setup(worker("a", 48), sessions=2)
    # ccna-basic asks for 4 ports; a worker with 6 ports in its range takes one session only.
    outcome = await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=6).run_once()
    assert outcome.scheduled == 1
    assert cp.sessions["s1"].pending_reason is not None
    assert "no free ports" in cp.sessions["s1"].pending_reason


async def test_only_due_sessions_are_placed() -> None:
    cp, gateway = setup(worker("a", 48), sessions=0)
    now = datetime.now(UTC)
    cp.add_session("soon", timeslot_start=now + timedelta(minutes=10), timeslot_end=now + timedelta(hours=1))
    cp.add_session("next-week", timeslot_start=now + timedelta(days=7), timeslot_end=now + timedelta(days=7, hours=1))
    cp.add_session("over", timeslot_start=now - timedelta(hours=2), timeslot_end=now - timedelta(hours=1))
    outcome = await SchedulingPass(gateway, Scheduler(), port_capacity=100,
                                   schedule_ahead_seconds=900).run_once()
    assert outcome.pending == 1
    assert cp.sessions["soon"].status is S.SCHEDULED
    assert cp.sessions["next-week"].status is S.PENDING
    assert cp.sessions["over"].status is S.PENDING  # the CPA's sweep expires it, not the scheduler
    assert len(cp.decisions) == 1


async def test_a_session_that_moved_on_does_not_blame_the_worker() -> None:
    cp, _ = setup(worker("a", 48), sessions=2)

    class Racing(CountingGateway):
        async def schedule(self, sid: str, worker_id: str | None, decision: Any) -> Any:
            if sid == "s0":  # terminated by an operator in the meantime
                cp.sessions["s0"] = cp.sessions["s0"].model_copy(update={"status": S.TERMINATED})
            return await cp.schedule(sid, worker_id, decision)

    outcome = await SchedulingPass(Racing(cp), Scheduler(), port_capacity=100).run_once()
    assert outcome.conflicts == 1
    assert cp.sessions["s1"].worker_id == "a"  # "a" was not left out of the pass


async def test_an_unreachable_worker_gets_no_session_while_a_healthy_one_does() -> None:
    # The unreachable worker is the emptier one: best_fit would prefer it if health were not checked.
    cp, gateway = setup(worker("sick", 48, health_status="unreachable"), worker("well", 12), sessions=2)
    outcome = await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100).run_once()
    assert outcome.scheduled == 2
    assert [cp.sessions[f"s{n}"].worker_id for n in range(2)] == ["well", "well"]
    assert not any(d.scores.get("sick") for d in cp.decisions)


async def test_a_session_on_an_unhealthy_fleet_shows_why_it_waits() -> None:
    cp, gateway = setup(worker("a", 48, health_status="unreachable"), worker("b", 48, status="draining"),
                        sessions=1)
    outcome = await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100).run_once()
    assert outcome.no_candidate == 1
    session = cp.sessions["s0"]
    assert session.status is S.PENDING
    assert session.pending_reason == ("no eligible worker among 2: worker cml-b: draining; "
                                      "worker cml-a: health unreachable")


def ccna_pool(**kw: Any) -> dict[str, Any]:
    return {"id": "p1", "name": "ccna-pool", "lab_track": "ccna", "template_name": "m5zn", "phase": "ready",
            "desired_workers": 1, "scaling": {"policy": "capacity_based", "min_workers": 1, "max_workers": 3},
            "capacity": {"workers": 1, "ready": 1}, **kw}


def pooled(*workers: dict[str, Any], sessions: int, **pool: Any) -> tuple[FakeControlPlane, CountingGateway]:
    """Sessions of track ccna, whose pool p1 has the workers given with `pool_id="p1"`."""
    cp, gateway = setup(*workers, sessions=0)
    for n in range(sessions):
        cp.add_session(f"s{n}", lab_track="ccna")
    cp.pools_["p1"] = ccna_pool(**pool)
    return cp, gateway


async def test_a_session_waits_for_its_pool_and_the_wait_is_recorded_with_the_pool() -> None:
    # The pool's only worker is full; the idle general worker is not used: the pool can still grow.
    cp, gateway = pooled(worker("general", 48), worker("member", 2, lab_track="ccna", pool_id="p1"), sessions=2)
    pass_ = SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100)
    outcome = await pass_.run_once()
    assert (gateway.worker_reads, gateway.pool_reads) == (1, 1)
    assert (outcome.scheduled, outcome.waiting_for_capacity, outcome.no_candidate) == (0, 2, 0)
    assert all(cp.sessions[f"s{n}"].status is S.PENDING for n in range(2))
    assert [(d.success, d.waiting_for_pool) for d in cp.decisions] == [(False, "p1"), (False, "p1")]
    assert cp.sessions["s0"].pending_reason == (
        "waiting for capacity: pool ccna-pool (1 of max 3 workers) was asked to scale up; none of its workers "
        "fits: worker cml-member: insufficient cpu")
    assert pass_.last.stats()["waiting_for_capacity"] == 2
    await pass_.run_once()
    assert len(cp.decisions) == 2  # the same reason: not written again


async def test_the_pools_worker_is_chosen_over_a_better_general_one() -> None:
    cp, gateway = pooled(worker("general", 48), worker("member", 12, lab_track="ccna", pool_id="p1",
                                                        labs_count=3), sessions=1)
    outcome = await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100).run_once()
    assert outcome.scheduled == 1
    assert cp.sessions["s0"].worker_id == "member"
    assert cp.decisions[0].waiting_for_pool is None


async def test_a_full_pool_at_its_maximum_leaves_the_session_to_the_general_workers() -> None:
    cp, gateway = pooled(worker("general", 48), worker("member", 2, lab_track="ccna", pool_id="p1"), sessions=1,
                         desired_workers=3, capacity={"workers": 3, "ready": 3})
    outcome = await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100).run_once()
    assert (outcome.scheduled, outcome.waiting_for_capacity) == (1, 0)
    assert cp.sessions["s0"].worker_id == "general"
    assert "pool ccna-pool is at its maximum of 3 workers" in cp.decisions[0].reason


async def test_no_pending_session_reads_neither_workers_nor_pools() -> None:
    _, gateway = pooled(worker("general", 48), sessions=0)
    await SchedulingPass(gateway, Scheduler(), port_capacity=100).run_once()
    assert (gateway.worker_reads, gateway.pool_reads) == (0, 0)


async def test_a_worker_warming_up_for_its_warm_pool_takes_no_session() -> None:
    # The warming worker is the emptier one, and unlicensed workers may take small labs here: only the warm-up
    # keeps it out (it stops as soon as its CML is up).
    cp, gateway = setup(worker("warm", 48, park_when_ready=True, license_status="unregistered"),
                        worker("well", 12), sessions=2)
    outcome = await SchedulingPass(gateway, Scheduler("least_utilized", require_license=False),
                                   port_capacity=100).run_once()
    assert outcome.scheduled == 2
    assert [cp.sessions[f"s{n}"].worker_id for n in range(2)] == ["well", "well"]
