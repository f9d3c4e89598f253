"""The one read-modify-write (`application.versioned.mutate`), without any server: a lost race is re-read and
re-applied (bounded), nothing else is retried, and a change that changes nothing is not written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from control_plane_api.application.versioned import mutate
from control_plane_api.domain.events import DomainEvent
from lcm_core.errors import ConflictError, VersionConflict

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Counter(BaseModel):
    id: str = "c1"
    value: int = 0
    version: int = 1
    updated_at: datetime = NOW


class Store:
    """Loses the first `races` saves, as if another writer had come first each time."""

    def __init__(self, races: int = 0) -> None:
        self.stored = Counter()
        self.races = races
        self.reads = 0
        self.saves = 0

    async def get(self, aggregate_id: str) -> Counter:
        self.reads += 1
        return self.stored.model_copy()

    async def save(self, counter: Counter, _leader: object = None) -> None:
        self.saves += 1
        if self.races:
            self.races -= 1
            self.stored.value += 100  # the other writer's change
            self.stored.version += 1
            raise VersionConflict("lost")
        counter.version += 1
        self.stored = counter.model_copy()


def add(n: int):
    def change(counter: Counter, _now: datetime) -> list[DomainEvent]:
        counter.value += n
        return [DomainEvent(type="counter.added", data={"n": n})] if n else []
    return change


async def test_a_lost_race_is_re_read_and_re_applied_and_both_changes_land() -> None:
    store, published = Store(races=2), []

    async def after(counter: Counter, events: list[DomainEvent]) -> None:
        published.append((counter.value, [e.type for e in events]))

    done = await mutate(store, "c1", add(1), clock=lambda: NOW, attempts=5, after_commit=after)
    assert (done.written, done.aggregate.value, done.aggregate.version) == (True, 201, 4)
    assert (store.reads, store.saves) == (3, 3)
    assert published == [(201, ["counter.added"])]  # once, after the write that won


async def test_the_last_lost_race_is_raised() -> None:
    store = Store(races=3)
    with pytest.raises(VersionConflict):
        await mutate(store, "c1", add(1), clock=lambda: NOW, attempts=3)
    assert store.saves == 3


async def test_other_conflicts_are_not_retried() -> None:
    store = Store()

    def refuse(_counter: Counter, _now: datetime) -> list[DomainEvent]:
        raise ConflictError("not in this state")

    with pytest.raises(ConflictError, match="not in this state"):
        await mutate(store, "c1", refuse, clock=lambda: NOW, attempts=5)
    assert (store.reads, store.saves) == (1, 0)


async def test_a_change_that_changes_nothing_is_not_written() -> None:
    store = Store()
    done = await mutate(store, "c1", add(0), clock=lambda: NOW, attempts=5)
    assert (done.written, done.events, store.saves) == (False, [], 0)
