"""The lablet-session use cases over in-memory fakes of the ports, without any server: booking (create and
schedule, with the capacity and ports reserved on the worker), transitions, observation, terminate and expiry,
and the capacity ledger's reservations and releases (exactly once), with the leader fence passed down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.application.lablet_capacity import CapacityLedger
from control_plane_api.application.lablet_definitions import DefinitionService, InThread
from control_plane_api.application.lablet_sessions import SessionService
from control_plane_api.domain.fencing import LABLET_CONTROLLER, LeaderCaller
from control_plane_api.domain.lablet_definition import DefinitionContent, LabletDefinition
from control_plane_api.domain.lablet_queries import SessionQuery
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_capacity import PortRange
from lcm_core.domain.enums import HealthStatus, ServiceStatus
from lcm_core.domain.lablets import (
    LabletDefinitionStatus,
    LabletSessionStatus,
    ResourceObservation,
    ResourceRequirements,
    ScheduleRequest,
    SchedulingDecision,
)
from lcm_core.errors import ConflictError, FencedError
from lcm_core.testing import sample_topologies
from tests.control_plane_api.application.fakes import (
    InMemoryDefinitions,
    InMemoryKeys,
    InMemorySessions,
    InMemoryWorkers,
    RecordingPublisher,
)
from tests.control_plane_api.application.fakes_pools import InMemoryPools

S = LabletSessionStatus
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LEADER = LeaderCaller(LABLET_CONTROLLER, 40)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    clock: Clock
    publisher: RecordingPublisher
    keys: InMemoryKeys
    sessions: InMemorySessions
    definitions: InMemoryDefinitions
    workers: InMemoryWorkers
    ledger: CapacityLedger
    definition_service: DefinitionService
    service: SessionService

    async def definition(self) -> LabletDefinition:
        made = await self.definition_service.create(
            "ccna", DefinitionContent(lab_topology_yaml=sample_topologies.load()), by="admin")
        return await self.definition_service.set_status(made.id, LabletDefinitionStatus.ACTIVE, by="admin")

    async def worker(self, n: int = 1, cores: float = 48) -> Worker:
        made, _ = Worker.discovered(DiscoveredInstance(
            aws_instance_id=f"i-{n:017x}", aws_region="us-east-1", instance_type="m5zn.metal", state="running"),
            self.clock(), "test")
        made.service_status, made.health_status = ServiceStatus.AVAILABLE, HealthStatus.HEALTHY
        made.capacity.declared.cpu_cores = cores
        await self.workers.insert(made)
        return made

    async def booked(self, definition: LabletDefinition, minutes: int = 60) -> LabletSession:
        return await self.service.create(definition.id, "student", self.clock(),
                                         self.clock() + timedelta(minutes=minutes), by="admin")

    async def scheduled(self, definition: LabletDefinition, worker: Worker,
                        leader: LeaderCaller = LEADER) -> LabletSession:
        session = await self.booked(definition)
        return await self.service.schedule(session.id, schedule(worker.id), by=leader.by, leader=leader)

    def state_key(self, session_id: str) -> dict[str, object] | None:
        return self.keys.values.get(self.keys.session_key(session_id, "state"))

    def state(self, session_id: str) -> dict[str, object]:
        """The session's state key in etcd; fails when it is gone."""
        state = self.state_key(session_id)
        if state is None:
            raise AssertionError(f"session {session_id} has no state key")
        return state


def schedule(worker_id: str | None, reason: str = "best fit") -> ScheduleRequest:
    return ScheduleRequest(worker_id=worker_id, decision=SchedulingDecision(
        success=worker_id is not None, worker_id=worker_id, reason=reason))


@pytest.fixture
def world() -> World:
    clock, publisher, keys = Clock(), RecordingPublisher(), InMemoryKeys()
    sessions, definitions = InMemorySessions(), InMemoryDefinitions()
    workers = InMemoryWorkers(publisher, clock)
    ledger = CapacityLedger(workers, workers, sessions, PortRange(5000, 5999), orphan_grace_seconds=60, clock=clock)
    definition_service = DefinitionService(definitions, sessions, publisher, clock=clock, off_loop=InThread())
    service = SessionService(sessions, definition_service, ledger, publisher, keys, InMemoryPools(),
                             review_ratio=0.25, clock=clock)
    return World(clock, publisher, keys, sessions, definitions, workers, ledger, definition_service, service)


async def test_booking_reserves_capacity_and_ports_on_the_worker_then_schedules(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    session = await world.booked(definition)
    assert (session.status, session.version, world.state(session.id)["status"]) == (S.PENDING, 1, "pending")
    assert "lablet.session.created" in world.publisher.types()

    scheduled = await world.service.schedule(session.id, schedule(worker.id), by=LEADER.by, leader=LEADER)
    assert (scheduled.status, scheduled.worker_id) == (S.SCHEDULED, worker.id)
    assert set(scheduled.allocated_ports) == {p.name for p in definition.port_template}
    held = world.workers.stored(worker.id).capacity
    assert held.port_allocations == {session.id: scheduled.allocated_ports}
    assert held.allocated.cpu_cores == definition.resource_requirements.cpu_cores
    assert world.state(session.id)["status"] == "scheduled"
    # The leader's epoch is recorded with both aggregates it wrote.
    assert world.sessions.stored(session.id).fence == world.workers.stored(worker.id).fence == {LABLET_CONTROLLER: 40}

    again = await world.service.schedule(session.id, schedule(worker.id), by=LEADER.by, leader=LEADER)
    assert (again.allocated_ports, again.version) == (scheduled.allocated_ports, scheduled.version)  # a repeat


async def test_two_sessions_on_one_worker_get_distinct_ports(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    first = await world.scheduled(definition, worker)
    second = await world.scheduled(definition, worker)
    assert not set(first.allocated_ports.values()) & set(second.allocated_ports.values())
    assert world.workers.stored(worker.id).capacity.session_ids == sorted([first.id, second.id])


async def test_no_candidate_keeps_the_session_pending_with_the_reason(world: World) -> None:
    session = await world.booked(await world.definition())
    found = await world.service.schedule(session.id, schedule(None, "no worker has 3 free cores"), by=LEADER.by,
                                         leader=LEADER)
    assert (found.status, found.pending_reason, found.scheduling_attempts) == (
        S.PENDING, "no worker has 3 free cores", 1)


async def test_a_worker_without_room_is_refused_and_nothing_is_reserved(world: World) -> None:
    definition, worker = await world.definition(), await world.worker(cores=1)
    session = await world.booked(definition)
    with pytest.raises(ConflictError, match="lacks capacity"):
        await world.service.schedule(session.id, schedule(worker.id), by=LEADER.by, leader=LEADER)
    assert world.sessions.stored(session.id).status is S.PENDING
    assert world.workers.stored(worker.id).capacity.reservations == {}


async def test_a_reservation_is_given_back_when_the_session_cannot_be_scheduled_after_all(world: World) -> None:
    """The session is terminated between the worker's reservation and its own write: the schedule is refused
    and the reservation released, so no capacity leaks."""
    definition, worker = await world.definition(), await world.worker()
    session = await world.booked(definition)
    reserve = world.ledger.reserve

    async def reserve_then_terminate(*args: object, **kwargs: object) -> dict[str, int]:
        ports = await reserve(*args, **kwargs)  # type: ignore[arg-type]
        await world.service.terminate(session.id, by="admin", reason="cancelled")
        return ports

    world.ledger.reserve = reserve_then_terminate  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="only a pending session is scheduled"):
        await world.service.schedule(session.id, schedule(worker.id), by=LEADER.by, leader=LEADER)
    assert world.sessions.stored(session.id).status is S.TERMINATED
    assert world.workers.stored(worker.id).capacity.reservations == {}


async def test_the_lifecycle_releases_capacity_once_when_the_session_leaves_the_worker(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    session = await world.scheduled(definition, worker)
    await world.service.transition(session.id, S.INSTANTIATING, "importing", by=LEADER.by, leader=LEADER)
    ready = await world.service.mark_ready(session.id, "lab-1", by=LEADER.by, leader=LEADER)
    assert (ready.status, ready.cml_lab_id) == (S.READY, "lab-1")
    for to in (S.RUNNING, S.STOPPING):
        await world.service.transition(session.id, to, "lifecycle", by=LEADER.by, leader=LEADER)
    assert world.workers.stored(worker.id).capacity.session_ids == [session.id]  # still on the worker

    stopped = await world.service.transition(session.id, S.STOPPED, "lab removed", by=LEADER.by, leader=LEADER)
    assert stopped.status is S.STOPPED
    assert world.workers.stored(worker.id).capacity.reservations == {}
    releases = world.publisher.types().count("worker.capacity.updated")
    saves = world.workers.saves
    # Repeated (a retried call): nothing changes, the release is asked again and gives nothing back twice.
    await world.service.transition(session.id, S.STOPPED, "lab removed", by=LEADER.by, leader=LEADER)
    assert (world.publisher.types().count("worker.capacity.updated"), world.workers.saves) == (releases, saves)
    with pytest.raises(ConflictError, match="cannot go from stopped to running"):
        await world.service.transition(session.id, S.RUNNING, "again", by=LEADER.by, leader=LEADER)


async def test_unscheduling_back_to_pending_gives_the_worker_back(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    session = await world.scheduled(definition, worker)
    back = await world.service.transition(session.id, S.PENDING, "worker unreachable", by=LEADER.by, leader=LEADER)
    assert (back.status, back.worker_id, back.allocated_ports) == (S.PENDING, None, {})
    assert world.workers.stored(worker.id).capacity.reservations == {}


async def test_terminate_ends_a_session_without_a_lab_at_once_and_asks_the_controller_for_one_with_a_lab(
        world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    scheduled = await world.scheduled(definition, worker)
    ended = await world.service.terminate(scheduled.id, by="admin", reason=None)
    assert (ended.status, ended.state_history[-1].reason) == (S.TERMINATED, "terminated by admin")
    assert world.workers.stored(worker.id).capacity.reservations == {}
    assert world.state_key(scheduled.id) is None  # a terminal session's keys are gone

    live = await world.scheduled(definition, worker)
    await world.service.transition(live.id, S.INSTANTIATING, "importing", by=LEADER.by, leader=LEADER)
    asked = await world.service.terminate(live.id, by="admin", reason="class over")
    assert (asked.status, asked.terminate_requested) == (S.STOPPING, True)
    assert world.state(live.id)["terminate_requested"] is True
    assert world.workers.stored(worker.id).capacity.session_ids == [live.id]  # until its lab is gone


async def test_overdue_sessions_expire_and_release_what_they_held(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    scheduled = await world.scheduled(definition, worker)
    pending = await world.booked(definition, minutes=30)
    later = await world.booked(definition, minutes=120)
    world.clock.now = START + timedelta(minutes=61)
    assert await world.service.expire_overdue() == 2
    statuses = {s: world.sessions.stored(s).status for s in (scheduled.id, pending.id, later.id)}
    assert statuses == {scheduled.id: S.EXPIRED, pending.id: S.EXPIRED, later.id: S.PENDING}
    assert world.workers.stored(worker.id).capacity.reservations == {}
    assert await world.service.expire_overdue() == 0


async def test_scheduling_an_overdue_session_expires_it(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    session = await world.booked(definition, minutes=10)
    world.clock.now = START + timedelta(minutes=11)
    with pytest.raises(ConflictError, match="expired"):
        await world.service.schedule(session.id, schedule(worker.id), by=LEADER.by, leader=LEADER)
    assert world.sessions.stored(session.id).status is S.EXPIRED
    assert world.workers.stored(worker.id).capacity.reservations == {}


async def test_an_observation_request_is_answered_and_drift_and_difference_recorded(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    session = await world.scheduled(definition, worker)
    await world.service.transition(session.id, S.INSTANTIATING, "importing", by=LEADER.by, leader=LEADER)
    await world.service.mark_ready(session.id, "lab-1", by=LEADER.by, leader=LEADER)

    asked, request_id = await world.service.request_observation(session.id, by="admin")
    observe_key = world.keys.session_key(session.id, "observe_resources")
    assert world.keys.values[observe_key]["request_id"] == request_id
    again, same_id = await world.service.request_observation(session.id, by="admin")
    assert (same_id, again.version) == (request_id, asked.version)  # pending: answered, not doubled

    ports = dict(world.sessions.stored(session.id).allocated_ports)
    moved = next(iter(ports))
    observed_ports = {**ports, moved: 5999}
    observation = ResourceObservation(observed_at=world.clock(), observer="lablet-controller",
                                      total_cpu_cores=definition.resource_requirements.cpu_cores * 3,
                                      total_memory_mb=2048, actual_node_count=4, observed_ports=observed_ports,
                                      request_id=request_id)
    recorded = await world.service.record_observation(session.id, observation, leader=LEADER)
    assert (recorded.observation_count, recorded.port_drift_detected, recorded.observe_requested) == (1, True, False)
    assert observe_key not in world.keys.values
    assert world.workers.stored(worker.id).capacity.reservations[session.id].drifted_ports == {moved: 5999}
    flagged = world.definitions.stored(definition.id)
    assert flagged.observation_review
    assert "cpu_cores observed" in (flagged.review_reason or "")

    count = len(world.publisher.events)
    await world.service.record_observation(session.id, observation, leader=LEADER)  # the same, posted again
    assert (len(world.publisher.events), world.sessions.stored(session.id).observation_count) == (count, 1)


async def test_orphaned_reservations_are_released_after_the_grace_period(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    held = await world.scheduled(definition, worker)
    await world.ledger.reserve(worker.id, "gone-session", ResourceRequirements(cpu_cores=1), [], 1)
    assert await world.ledger.release_orphans() == 0  # within the grace period: maybe a schedule in flight
    world.clock.now = START + timedelta(seconds=61)
    assert await world.ledger.release_orphans() == 1
    assert world.workers.stored(worker.id).capacity.session_ids == [held.id]


async def test_a_deposed_leader_cannot_change_what_its_successor_wrote(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    session = await world.scheduled(definition, worker)  # by LEADER (epoch 40)
    successor = LeaderCaller(LABLET_CONTROLLER, 55)
    await world.service.transition(session.id, S.INSTANTIATING, "importing", by=successor.by, leader=successor)
    with pytest.raises(FencedError, match="stale leader epoch 40"):
        await world.service.transition(session.id, S.STOPPING, "stale decision", by=LEADER.by, leader=LEADER)
    assert world.sessions.stored(session.id).status is S.INSTANTIATING
    # The successor also wrote the worker (a reservation): the deposed leader cannot reserve on it any more.
    await world.scheduled(definition, worker, leader=successor)
    other = await world.booked(definition)
    with pytest.raises(FencedError):
        await world.service.schedule(other.id, schedule(worker.id), by=LEADER.by, leader=LEADER)
    assert other.id not in world.workers.stored(worker.id).capacity.reservations
    assert world.sessions.stored(other.id).status is S.PENDING
    # Operators are not fenced.
    assert (await world.service.terminate(other.id, by="admin", reason=None)).status is S.TERMINATED


async def test_reads_go_through_the_service(world: World) -> None:
    definition, worker = await world.definition(), await world.worker()
    first = await world.scheduled(definition, worker)
    await world.booked(definition)
    page, total = await world.service.page(SessionQuery(status=["scheduled"]), 0, 10)
    assert (total, [s.id for s in page]) == (1, [first.id])
    assert (await world.service.get(first.id)).worker_id == worker.id
