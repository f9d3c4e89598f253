"""The leader fence in storage, against the real MongoDB-wire server of the test session: once a new leader of a
service has written a document, a write of a lower epoch of that service is refused (`FencedError`, never
retried), whether it read the document before or after the new leader wrote, alone or in a batch. Operators'
writes and other services' epochs are not fenced by it, and the tokens survive their writes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from control_plane_api.application.versioned import mutate
from control_plane_api.domain.fencing import LABLET_CONTROLLER, WORKER_CONTROLLER, LeaderCaller
from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.worker import Worker
from control_plane_api.infrastructure.mongo_workers import WorkerRepository
from lcm_core.errors import FencedError, VersionConflict
from lcm_core.testing.servers import Endpoint

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DEPOSED = LeaderCaller(WORKER_CONTROLLER, 10)
SUCCESSOR = LeaderCaller(WORKER_CONTROLLER, 20)


@pytest.fixture
async def repo(mongo_server: Endpoint) -> AsyncIterator[WorkerRepository]:
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://{mongo_server.address}", tz_aware=True)
    try:
        yield WorkerRepository(client[f"lcm_fence_{uuid.uuid4().hex[:10]}"]["workers"])
    finally:
        await client.close()


def discovered(n: int) -> Worker:
    worker, _ = Worker.discovered(DiscoveredInstance(
        aws_instance_id=f"i-{n:017x}", aws_region="us-east-1", name=f"cml-{n}", instance_type="m5zn.metal",
        state="running"), NOW, "test")
    return worker


async def stored_fence(repo: WorkerRepository, worker_id: str) -> dict[str, int]:
    document = await repo._c.find_one({"_id": worker_id})
    assert document is not None, f"worker {worker_id} is not stored"
    fence: dict[str, int] = document["fence"]
    return fence


async def test_a_deposed_leader_cannot_write_after_its_successor_did(repo: WorkerRepository) -> None:
    worker = discovered(1)
    await repo.insert(worker, DEPOSED)
    read_by_deposed = await repo.get(worker.id)
    successor = await repo.get(worker.id)
    successor.name = "renamed-by-the-new-leader"
    await repo.save(successor, SUCCESSOR)
    assert await stored_fence(repo, worker.id) == {WORKER_CONTROLLER: 20}

    # What it read before the successor wrote: refused as fenced, not as a lost race to retry.
    read_by_deposed.name = "stale"
    with pytest.raises(FencedError, match="stale leader epoch 10"):
        await repo.save(read_by_deposed, DEPOSED)
    # What it reads now: the version matches, the token does not.
    fresh = await repo.get(worker.id)
    fresh.name = "stale"
    with pytest.raises(FencedError, match="stale leader epoch 10"):
        await repo.save(fresh, DEPOSED)
    stored = await repo.get(worker.id)
    assert (stored.name, stored.version) == ("renamed-by-the-new-leader", 2)


async def test_the_fence_is_in_the_write_filter_not_only_in_the_check_before_it(repo: WorkerRepository) -> None:
    """A deposed leader whose read raced with its successor's write: its copy shows no token, the stored
    document does; the conditional write itself refuses (a version race alone would have been retried)."""
    worker = discovered(2)
    await repo.insert(worker)
    raced = await repo.get(worker.id)
    successor = await repo.get(worker.id)
    await repo.save(successor, SUCCESSOR)
    # Same version as stored, as if read after the write: only the filter's token condition can refuse it.
    raced.version = successor.version
    with pytest.raises(FencedError):
        await repo.save(raced, DEPOSED)
    assert (await repo.get(worker.id)).version == successor.version


async def test_a_deposed_leaders_batch_is_refused_whole(repo: WorkerRepository) -> None:
    first, second = discovered(3), discovered(4)
    assert await repo.insert_many([first, second], DEPOSED) == {first.id, second.id}
    newer = await repo.get(second.id)
    await repo.save(newer, SUCCESSOR)
    batch = list((await repo.get_many([first.id, second.id])).values())
    for worker in batch:
        worker.name = "stale"
    with pytest.raises(FencedError):
        await repo.save_many(batch, DEPOSED)
    assert {w.name for w in (await repo.get_many([first.id, second.id])).values()} == {"cml-3", "cml-4"}
    # The successor's batch goes through and raises the token of both.
    for worker in batch:
        worker.name = "current"
    assert await repo.save_many(batch, SUCCESSOR) == set()
    assert [await stored_fence(repo, w.id) for w in batch] == [{WORKER_CONTROLLER: 20}] * 2


async def test_mutate_does_not_retry_a_fenced_write(repo: WorkerRepository) -> None:
    worker = discovered(5)
    await repo.insert(worker, SUCCESSOR)
    applied = []

    def rename(w: Worker, _now: datetime) -> list:
        applied.append(w.version)
        w.name = "stale"
        return []

    with pytest.raises(FencedError):
        await mutate(repo, worker.id, rename, clock=lambda: NOW, attempts=8, leader=DEPOSED)
    assert applied == [1]  # read and applied once, never re-read


async def test_operators_and_other_services_are_not_fenced_and_keep_the_tokens(repo: WorkerRepository) -> None:
    worker = discovered(6)
    await repo.insert(worker, SUCCESSOR)
    operator = await repo.get(worker.id)
    operator.name = "by-an-operator"
    await repo.save(operator)  # no epoch: no check, no token
    lablet = await repo.get(worker.id)
    lablet.lab_track = "ccna"
    await repo.save(lablet, LeaderCaller(LABLET_CONTROLLER, 3))  # lower than 20, but another service's
    assert await stored_fence(repo, worker.id) == {WORKER_CONTROLLER: 20, LABLET_CONTROLLER: 3}
    stale = await repo.get(worker.id)
    stale.name = "late"
    await repo.save(await repo.get(worker.id), SUCCESSOR)
    with pytest.raises(VersionConflict):  # a plain lost race stays a retryable conflict
        await repo.save(stale, SUCCESSOR)
    stored = await repo.get(worker.id)
    assert (stored.name, stored.lab_track) == ("by-an-operator", "ccna")
