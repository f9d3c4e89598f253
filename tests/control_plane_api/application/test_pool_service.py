"""The worker-pool use cases over in-memory fakes of their ports (and the real worker use cases over theirs): no
server, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.application.pools import PoolService
from control_plane_api.application.workers import WorkerService
from control_plane_api.domain.fencing import WORKER_CONTROLLER, LeaderCaller
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.pool import WorkerPool, launch_key
from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.system_settings import RegionPlacement, WorkerTemplate
from control_plane_api.domain.worker import Worker, worker_id_for
from control_plane_api.domain.worker_state import Reservation
from lcm_core.domain.enums import DesiredStatus, WorkerStatus
from lcm_core.domain.lablets import ResourceRequirements, SchedulingDecision
from lcm_core.domain.pools import PoolEvaluation, PoolPhase, PoolSpec, ScaleRequest
from lcm_core.domain.workers import Resources
from lcm_core.errors import ConflictError, FencedError, InvalidError, VersionConflict
from tests.control_plane_api.application.fakes import (
    FixedSettings,
    InMemoryKeys,
    InMemorySessions,
    InMemoryTelemetry,
    InMemoryWorkerKeys,
    InMemoryWorkerStore,
    RecordingPublisher,
    RecordingWebhooks,
)
from tests.control_plane_api.application.fakes_pools import InMemoryLeadTimes, InMemoryPools, InMemoryTemplates

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
LEADER = LeaderCaller(WORKER_CONTROLLER, 12)
CAPACITY = Resources(cpu_cores=48, memory_gb=192, storage_gb=500, max_nodes=200)


def spec(**changes: object) -> PoolSpec:
    scaling = changes.pop("scaling", {"min_workers": 0, "max_workers": 4})
    return PoolSpec.model_validate({"name": "ccna-pool", "lab_track": "ccna", "template_name": "standard",
                                    "regions": ["us-east-1"], "scaling": scaling, **changes})


class Rig:
    def __init__(self) -> None:
        self.now = START
        self.published = RecordingPublisher()
        self.templates = InMemoryTemplates(WorkerTemplate(name="standard", capacity=CAPACITY, regions={
            "us-east-1": RegionPlacement(), "eu-west-1": RegionPlacement()}))
        self.worker_store = InMemoryWorkerStore()
        self.workers = WorkerService(self.worker_store, FixedSettings(), self.published,  # type: ignore[arg-type]
                                     InMemoryWorkerKeys(), RecordingWebhooks(), templates=self.templates,
                                     telemetry=InMemoryTelemetry(), clock=lambda: self.now)
        self.sessions = InMemorySessions()
        self.store = InMemoryPools()
        self.keys = InMemoryKeys()
        self.service = PoolService(self.store, self.workers, self.templates, self.sessions, self.published,
                                   self.keys, InMemoryLeadTimes(), clock=lambda: self.now)

    async def pool(self, **changes: object) -> WorkerPool:
        return await self.service.create(spec(**changes), by="admin")

    async def running_worker(self, n: int = 1) -> str:
        found = DiscoveredInstance(aws_instance_id=f"i-{n:017x}", aws_region="us-east-1", state="running",
                                   instance_type="m5zn.metal")
        return (await self.workers.bulk_import([found], by="discovery")).created[0]

    def report(self, pool: WorkerPool, **fields: object) -> PoolEvaluation:
        return PoolEvaluation.model_validate({
            "expected_version": pool.version, "observed_at": self.now, "phase": "initializing",
            "capacity": {}, "desired_workers": pool.desired_workers, **fields})


async def test_create_checks_the_template_and_its_placements() -> None:
    rig = Rig()
    with pytest.raises(InvalidError, match="template 'nope' does not exist"):
        await rig.service.create(spec(template_name="nope"), by="admin")
    with pytest.raises(InvalidError, match="no placement for ap-south-1"):
        await rig.service.create(spec(regions=["us-east-1", "ap-south-1"]), by="admin")
    pool = await rig.pool()
    assert (pool.version, pool.phase) == (1, PoolPhase.PENDING)
    [created] = rig.published.events
    assert (created.type, created.data["pool"]["name"], created.data["pool"]["version"]) == (
        "pool.created", "ccna-pool", 1)
    assert rig.keys.values[f"/lcm/pools/{pool.id}/desired"] == {"pool_id": pool.id, "version": 1}
    with pytest.raises(ConflictError, match="already exists"):
        await rig.pool()
    with pytest.raises(ConflictError, match="lab track 'ccna' already has a pool"):
        await rig.pool(name="other")


async def test_an_update_names_the_spec_version_read_and_moves_the_members_to_the_new_track() -> None:
    rig = Rig()
    pool = await rig.pool()
    worker_id = await rig.running_worker()
    await rig.service.adopt(pool.id, worker_id, by="admin")  # moves the pool's version, not its spec's
    first = await rig.service.update(pool.id, spec(description="by someone else"), 1, by="admin")
    assert first.spec_version == 2
    with pytest.raises(VersionConflict, match="changed since spec_version 1"):
        await rig.service.update(pool.id, spec(lab_track="ccnp"), 1, by="admin")
    updated = await rig.service.update(pool.id, spec(lab_track="ccnp"), first.spec_version, by="admin")
    assert updated.lab_track == "ccnp"
    assert rig.worker_store.stored(worker_id).lab_track == "ccnp"


async def test_scale_drain_and_history_newest_first() -> None:
    rig = Rig()
    pool = await rig.pool()
    with pytest.raises(InvalidError, match="between 0 and 4"):
        await rig.service.scale(pool.id, ScaleRequest(workers=9), by="admin")
    await rig.service.scale(pool.id, ScaleRequest(workers=2), by="admin")
    await rig.service.scale(pool.id, ScaleRequest(workers=3, reason="exam"), by="admin")
    history = await rig.service.history(pool.id)
    assert [d.to_workers for d in history] == [3, 2]
    drained = await rig.service.drain(pool.id, by="admin")
    assert drained.draining
    assert rig.keys.values[f"/lcm/pools/{pool.id}/desired"]["version"] == drained.version
    with pytest.raises(ConflictError, match="draining"):
        await rig.service.scale(pool.id, ScaleRequest(workers=1), by="admin")
    assert not (await rig.service.undrain(pool.id, by="admin")).draining


async def test_an_evaluation_launches_members_and_a_replay_launches_nothing_twice() -> None:
    rig = Rig()
    pool = await rig.pool(regions=["us-east-1", "eu-west-1"])
    report = rig.report(pool, desired_workers=2, launch=["us-east-1", "eu-west-1"],
                        decision={"at": START, "action": "scale_up", "from_workers": 0, "to_workers": 2,
                                  "reason": "two sessions wait"})
    recorded = await rig.service.evaluate(pool.id, report, LEADER)
    assert (recorded.launches, recorded.desired_workers, recorded.phase) == (2, 2, PoolPhase.INITIALIZING)
    members = await rig.workers.members(pool.id)
    assert sorted(m.name for m in members) == ["ccna-pool-000", "ccna-pool-001"]
    assert sorted(m.aws_region for m in members) == ["eu-west-1", "us-east-1"]
    first = rig.worker_store.stored(worker_id_for(launch_key(pool.id, 0)))
    assert (first.pool_id, first.lab_track, first.template_name, first.license.register_when_available) == (
        pool.id, "ccna", "standard", True)
    assert first.fence == {WORKER_CONTROLLER: 12}
    again = await rig.service.evaluate(pool.id, report, LEADER)
    assert again.version == recorded.version
    assert len(await rig.workers.members(pool.id)) == 2
    with pytest.raises(ConflictError, match="changed since the autoscaler read it"):
        await rig.service.evaluate(pool.id, rig.report(pool), LEADER)
    types = [e.type for e in rig.published.events if e.type.startswith("pool.")]
    assert types == ["pool.created", "pool.phase.changed", "pool.scaled"]
    assert all(e.data["pool"]["launches"] == 2 for e in rig.published.events[-2:] if e.type.startswith("pool."))


async def test_an_evaluation_retires_and_resumes_members_and_a_refusal_does_not_undo_it() -> None:
    rig = Rig()
    pool = await rig.pool()
    running = await rig.running_worker(1)
    await rig.service.adopt(pool.id, running, by="admin")
    stranger = await rig.running_worker(2)
    pool = await rig.service.get(pool.id)
    recorded = await rig.service.evaluate(pool.id, rig.report(pool, phase="ready", retire=[running, stranger],
                                                             retire_then="terminate"), LEADER)
    assert recorded.phase is PoolPhase.READY
    drained = rig.worker_store.stored(running)
    assert drained.drain is not None
    assert drained.desired_status is DesiredStatus.TERMINATED
    assert rig.worker_store.stored(stranger).drain is None  # not a member: logged, the rest went on
    pool = await rig.service.get(pool.id)
    await rig.service.evaluate(pool.id, rig.report(pool, phase="ready", resume=[running]), LEADER)
    assert rig.worker_store.stored(running).desired_status is DesiredStatus.RUNNING


async def test_a_deposed_leaders_evaluation_is_fenced() -> None:
    rig = Rig()
    pool = await rig.pool()
    pool = await rig.service.evaluate(pool.id, rig.report(pool, phase="ready"), LEADER)
    with pytest.raises(FencedError):
        await rig.service.evaluate(pool.id, rig.report(pool), LeaderCaller(WORKER_CONTROLLER, 11))


async def test_adopt_and_release() -> None:
    rig = Rig()
    pool = await rig.pool()
    other = await rig.pool(name="ccnp-pool", lab_track="ccnp")
    worker_id = await rig.running_worker()
    await rig.workers.set_lab_track(worker_id, "old-track", by="admin")
    adopted = await rig.service.adopt(pool.id, worker_id, by="admin")
    assert adopted.version == 2
    assert (rig.worker_store.stored(worker_id).pool_id, rig.worker_store.stored(worker_id).lab_track) == (
        pool.id, "ccna")
    assert (await rig.service.adopt(pool.id, worker_id, by="admin")).version == 2  # already a member
    with pytest.raises(ConflictError, match=f"belongs to pool {pool.id}"):
        await rig.service.adopt(other.id, worker_id, by="admin")
    released = await rig.service.release(pool.id, worker_id, by="admin")
    assert released.version == 3
    assert (rig.worker_store.stored(worker_id).pool_id, rig.worker_store.stored(worker_id).lab_track) == (None, None)
    assert (await rig.service.release(pool.id, worker_id, by="admin")).version == 3  # idempotent
    types = [e.type for e in rig.published.events if e.type in ("pool.worker.adopted", "pool.worker.released",
                                                                "worker.pool.changed")]
    assert types == ["worker.pool.changed", "pool.worker.adopted", "worker.pool.changed", "pool.worker.released"]


async def test_a_worker_adopted_into_a_pool_closed_meanwhile_is_put_back() -> None:
    rig = Rig()
    pool = await rig.pool()
    worker_id = await rig.running_worker()
    await rig.workers.set_lab_track(worker_id, "old-track", by="admin")
    original = rig.service._change

    async def delete_first(pool_id, change, attempts=None):  # the delete lands between the two writes
        rig.service._change = original
        await rig.service.delete(pool_id, by="other-admin")
        return await original(pool_id, change, attempts)

    rig.service._change = delete_first  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="being deleted"):
        await rig.service.adopt(pool.id, worker_id, by="admin")
    worker = rig.worker_store.stored(worker_id)
    assert (worker.pool_id, worker.lab_track) == (None, "old-track")
    assert (await rig.service.get(pool.id)).deleting


async def test_delete_terminates_an_empty_pool_at_once_and_leaves_one_with_workers_to_the_autoscaler() -> None:
    rig = Rig()
    empty = await rig.pool()
    deleted = await rig.service.delete(empty.id, by="admin")
    assert deleted.terminated
    assert not any(k.startswith(f"/lcm/pools/{empty.id}/") for k in rig.keys.values)
    assert [p.id for p in await rig.service.live()] == []
    busy = await rig.pool()  # the name and track are free again
    await rig.service.adopt(busy.id, await rig.running_worker(), by="admin")
    deleting = await rig.service.delete(busy.id, by="admin")
    assert (deleting.deleting, deleting.phase) == (True, PoolPhase.PENDING)
    assert (await rig.service.delete(busy.id, by="admin")).version == deleting.version


async def test_the_autoscalers_view_of_a_pool() -> None:
    rig = Rig()
    pool = await rig.pool()
    worker_id = await rig.running_worker()
    await rig.service.adopt(pool.id, worker_id, by="admin")
    for n, (cores, waiting) in enumerate(((4, pool.id), (2, pool.id), (8, "another-pool"), (16, None))):
        session = LabletSession(definition_id="d", definition_version=1, definition_name="ccna", owner=f"s{n}",
                                timeslot_start=START, timeslot_end=START + timedelta(hours=1),
                                resource_requirements=ResourceRequirements(cpu_cores=cores, memory_gb=cores * 2),
                                created_at=START, updated_at=START)
        session.last_decision = SchedulingDecision(success=False, reason="no worker fits", waiting_for_pool=waiting)
        await rig.sessions.insert(session)
    work = await rig.service.work(pool.id)
    assert (work.waiting.sessions, work.waiting.cpu_cores, work.waiting.memory_gb) == (2, 6, 12)
    assert [w.id for w in work.workers] == [worker_id]
    assert work.workers[0].status is WorkerStatus.RUNNING
    assert (work.template_found, work.template_enabled, work.template_regions) == (True, True,
                                                                                  ["eu-west-1", "us-east-1"])
    assert work.template_capacity == CAPACITY
    del rig.templates.items["standard"]
    gone = await rig.service.work(pool.id)
    assert (gone.template_found, gone.template_enabled, gone.template_regions) == (False, False, [])


async def test_an_undrain_recalls_a_member_the_autoscaler_retired_again_while_it_was_undrained() -> None:
    """An evaluation made on the drained pool, after its member was recalled and before the pool's drain was
    cleared, still names the pool's version (the recall does not change the pool) and retires the member again:
    the undrain recalls it once more after the pool is open, or it stays drained in an undrained pool."""
    rig = Rig()
    pool = await rig.pool()
    member = await rig.running_worker()
    await rig.service.adopt(pool.id, member, by="admin")
    rig.worker_store.items[member].capacity.reservations["s1"] = Reservation(cpu_cores=4)
    pool = await rig.service.drain(pool.id, by="admin")
    await rig.service.evaluate(pool.id, rig.report(pool, phase="draining", retire=[member]), LEADER)
    assert rig.worker_store.stored(member).status is WorkerStatus.DRAINING
    recall = rig.workers.recall_member
    interleaved: list[str] = []

    async def recall_then_a_stale_evaluation(worker_id: str, pool_id: str, by: str) -> Worker:
        recalled = await recall(worker_id, pool_id, by)
        if not interleaved:
            interleaved.append(worker_id)
            stale = await rig.service.get(pool_id)
            assert stale.draining
            await rig.service.evaluate(pool_id, rig.report(stale, phase="draining", retire=[worker_id]), LEADER)
        return recalled

    rig.workers.recall_member = recall_then_a_stale_evaluation  # type: ignore[method-assign]
    undrained = await rig.service.undrain(pool.id, by="admin")
    assert not undrained.draining
    assert interleaved == [member]
    back = rig.worker_store.stored(member)
    assert (back.status, back.drain) == (WorkerStatus.RUNNING, None)
