"""Measured lead times against the MongoDB-wire server: one sample per clock, the newest `SAMPLES_KEPT` per
template and kind, read oldest first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.lead_times import SAMPLES_KEPT, LeadClock, LeadKind, measured
from control_plane_api.infrastructure.mongo_lead_times import LeadTimeRepository
from tests.fixtures.mongo import fresh_database

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
async def repo(mongo_server) -> AsyncIterator[LeadTimeRepository]:
    async with fresh_database(mongo_server, "lead") as db:
        repository = LeadTimeRepository(db["lead_time_samples"])
        await repository.ensure_indexes()
        yield repository


async def test_one_sample_per_clock_and_only_the_newest_are_kept(repo: LeadTimeRepository) -> None:
    extra = 5
    for n in range(SAMPLES_KEPT + extra):
        clock = LeadClock(kind=LeadKind.PROVISION, since=START + timedelta(minutes=n))
        assert await repo.record(measured("metal", f"w{n}", clock, clock.since + timedelta(seconds=600 + n)))
    again = LeadClock(kind=LeadKind.PROVISION, since=START + timedelta(minutes=SAMPLES_KEPT + extra - 1))
    assert not await repo.record(measured("metal", f"w{SAMPLES_KEPT + extra - 1}", again,
                                          again.since + timedelta(seconds=1)))  # the same clock: kept once
    resumed = LeadClock(kind=LeadKind.RESUME, since=START)
    assert await repo.record(measured("metal", "w0", resumed, START + timedelta(seconds=300)))
    assert await repo.record(measured("other", "x0", LeadClock(kind=LeadKind.PROVISION, since=START),
                                      START + timedelta(seconds=42)))

    kept = await repo.recent("metal", LeadKind.PROVISION, 1000)
    assert kept == [600.0 + n for n in range(extra, SAMPLES_KEPT + extra)]  # oldest first, the oldest trimmed
    assert await repo.recent("metal", LeadKind.PROVISION, 3) == kept[-3:]
    assert await repo.recent("metal", LeadKind.RESUME, 50) == [300.0]
    assert await repo.recent("other", LeadKind.PROVISION, 50) == [42.0]
    assert await repo.recent("missing", LeadKind.RESUME, 50) == []
