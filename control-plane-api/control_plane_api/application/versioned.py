"""The one read-modify-write of every versioned aggregate (workers, lablet definitions, lablet sessions).

`mutate` loads the aggregate, applies a domain change, and saves it under the version it read. When the save
loses a race (`VersionConflict`: somebody wrote since the read) it reads again and re-applies the change, a
bounded number of times, so two concurrent changes of one aggregate both land and neither caller sees the
race. Every other error, the domain's refusals and a deposed leader's fenced write (`FencedError`) included,
goes to the caller at once. A change that changes nothing is not written (and publishes nothing). A
controller leader's change names the leader (`LeaderCaller`), whose epoch the repository's write checks
against the tokens stored with the aggregate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from lcm_core.errors import VersionConflict


class Aggregate(Protocol):
    id: str
    updated_at: datetime

    def model_dump(self, *, exclude: set[str] | None = ...) -> dict[str, Any]: ...


A = TypeVar("A", bound=Aggregate)

Change = Callable[[A, datetime], list[DomainEvent]]
"""Applies domain behaviour to the aggregate read (mutating it) at the given time; returns its events."""
AfterCommit = Callable[[A, list[DomainEvent]], Awaitable[None]]
"""What follows a successful write: publication, etcd keys, notifications."""


class VersionedRepository(Protocol[A]):
    """The part of a repository `mutate` needs: a read, and a save that raises `VersionConflict` on a lost
    race, `FencedError` when a newer epoch of the leader's service wrote the aggregate, and leaves the
    aggregate at its new version when it won."""

    async def get(self, aggregate_id: str, /) -> A: ...

    async def save(self, aggregate: A, leader: LeaderCaller | None = None, /) -> None: ...


@dataclass
class Mutation(Generic[A]):
    aggregate: A
    """The aggregate as stored after the change (or as read, when nothing changed)."""
    events: list[DomainEvent] = field(default_factory=list)
    written: bool = False
    """Whether the change was stored (False: it changed nothing)."""


def fingerprint(aggregate: Aggregate) -> Any:
    """What decides whether a change changed anything: every field but the write path's own."""
    return aggregate.model_dump(exclude={"updated_at", "version", "revision"})


async def mutate(repository: VersionedRepository[A], aggregate_id: str, change: Change[A], *,
                 clock: Callable[[], datetime], attempts: int,
                 leader: LeaderCaller | None = None, after_commit: AfterCommit[A] | None = None,
                 fingerprint: Callable[[A], Any] = fingerprint) -> Mutation[A]:
    """Load → change → save(version); on a lost race re-read and re-apply, at most `attempts` times (the last
    lost race is raised). `leader`: the controller leader the change comes from (None for an operator's).
    `after_commit` runs once, after the write that won, with the change's events."""
    for attempt in range(1, attempts + 1):
        aggregate = await repository.get(aggregate_id)
        before = fingerprint(aggregate)
        now = clock()
        events = change(aggregate, now)
        if not events and fingerprint(aggregate) == before:
            return Mutation(aggregate)
        aggregate.updated_at = now
        try:
            await repository.save(aggregate, leader)
        except VersionConflict:
            if attempt >= attempts:
                raise
            continue
        if after_commit is not None:
            await after_commit(aggregate, events)
        return Mutation(aggregate, events, written=True)
    raise ValueError(f"attempts must be at least 1, not {attempts}")
