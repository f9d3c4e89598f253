"""A worker's latest telemetry in its own collection, against the MongoDB-wire server: the newest report wins,
an older one never overwrites it, and reading rows reads only their columns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from control_plane_api.infrastructure.mongo_telemetry import TelemetryRepository
from lcm_core.domain.cml_snapshot import CmlTelemetrySnapshot
from lcm_core.domain.workers import Utilisation, WorkerTelemetry
from tests.fixtures.mongo import fresh_database

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def repo(mongo_server) -> AsyncIterator[TelemetryRepository]:
    async with fresh_database(mongo_server, "telemetry") as db:
        yield TelemetryRepository(db["worker_telemetry"])


def telemetry(worker_id: str, at: datetime, cpu: float) -> WorkerTelemetry:
    return WorkerTelemetry(worker_id=worker_id, collected_at=at, utilisation=Utilisation(cpu_percent=cpu),
                           cml=CmlTelemetrySnapshot(labs_count=2, running_nodes=7, all_cpu_count=48))


async def test_a_write_lands_only_on_the_version_it_read(repo: TelemetryRepository) -> None:
    """Two writers of one worker's telemetry (a refresh during the fleet's cycle): the second to write, having
    read the same version, loses and is told so; nothing it wrote is stored."""
    w1, w2 = telemetry("w1", NOW, 10.0), telemetry("w2", NOW, 20.0)
    assert await repo.store_many([w1, w2]) == set()
    assert (w1.version, w2.version) == (1, 1)
    refresh = (await repo.get_many(["w1"]))["w1"]
    cycle = (await repo.get_many(["w1"]))["w1"]
    refresh.utilisation = Utilisation(cpu_percent=11.0)
    assert await repo.store_many([refresh]) == set()
    cycle.utilisation = Utilisation(cpu_percent=99.0)
    assert await repo.store_many([cycle, w2]) == {"w1"}  # w1 lost; w2 (read at version 1) landed
    assert cycle.version == 1  # left at the version it read
    stored = await repo.get_many(["w1", "w2", "w3"])
    assert {wid: (t.utilisation.cpu_percent, t.version) for wid, t in stored.items()} == {
        "w1": (11.0, 2), "w2": (20.0, 2)}
    assert await repo.get("w3") is None
    twin = telemetry("w1", NOW, 1.0)  # another writer that believes w1 was never stored
    assert await repo.store_many([twin]) == {"w1"}


async def test_rows_read_only_their_columns(repo: TelemetryRepository) -> None:
    await repo.store_many([telemetry("w1", NOW, 10.0)])
    full = await repo.get("w1")
    assert full is not None
    assert full.cml is not None
    assert full.cml.all_cpu_count == 48
    row = (await repo.get_many(["w1"], summary=True))["w1"]
    assert (row.utilisation.cpu_percent, row.labs_count, row.running_nodes) == (10.0, 2, 7)
    assert row.cml is not None
    assert row.cml.all_cpu_count is None  # not a column of the row: not read
    await repo.delete(["w1"])
    assert await repo.get("w1") is None

