"""Controller replicas' last reports against the MongoDB-wire server: reports of replicas gone longer than the
retention are deleted, except each service's newest (the service stays known, at zero replicas)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.infrastructure.mongo_settings import ControllerStatusRepository
from tests.fixtures.mongo import fresh_database

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(hours=1)


@pytest.fixture
async def repo(mongo_server) -> AsyncIterator[ControllerStatusRepository]:
    async with fresh_database(mongo_server, "status") as db:
        repository = ControllerStatusRepository(db["controller_status"])
        await repository.ensure_indexes()
        yield repository


async def record(repo: ControllerStatusRepository, service: str, identity: str, age: timedelta) -> None:
    await repo.record(service, identity, {"service": service, "identity": identity}, NOW - age)


async def stored(repo: ControllerStatusRepository) -> set[str]:
    return {f"{d['service']}/{d['identity']}" for d in await repo.all()}


async def test_reports_older_than_the_cutoff_are_forgotten_where_the_service_has_a_newer_one(repo) -> None:
    for n in range(20):  # pods of earlier rollouts
        await record(repo, "worker-controller", f"wc-old-{n:02d}", timedelta(hours=2, minutes=n))
    await record(repo, "worker-controller", "wc-live", timedelta(seconds=10))
    assert await repo.forget_older_than(CUTOFF) == 20
    assert await stored(repo) == {"worker-controller/wc-live"}


async def test_a_service_that_stopped_reporting_keeps_only_its_newest_report(repo) -> None:
    await record(repo, "lablet-controller", "lc-a", timedelta(hours=5))
    await record(repo, "lablet-controller", "lc-b", timedelta(hours=3))  # the last one to report
    await record(repo, "lablet-controller", "lc-c", timedelta(hours=4))
    await record(repo, "worker-controller", "wc-live", timedelta(minutes=59))  # within the retention: kept
    assert await repo.forget_older_than(CUTOFF) == 2
    assert await stored(repo) == {"lablet-controller/lc-b", "worker-controller/wc-live"}
    assert await repo.forget_older_than(CUTOFF) == 0  # nothing left to forget
    assert await stored(repo) == {"lablet-controller/lc-b", "worker-controller/wc-live"}
