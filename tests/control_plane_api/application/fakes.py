"""In-memory fakes of `control_plane_api.application.ports`, for use-case tests without any server.

The stores keep copies (what a caller holds is never the stored object) and behave like the MongoDB write path
(`infrastructure.mongo_versions`): a save names the version it read (`VersionConflict` otherwise), bumps it,
and a leader's save is fenced by the highest epoch of its service that wrote the aggregate (`FencedError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from control_plane_api.application import versioned
from control_plane_api.application.ports import WorkerChange
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.lablet_definition import LabletDefinition
from control_plane_api.domain.lablet_queries import SessionQuery
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.metric_history import MetricSample
from control_plane_api.domain.system_settings import SystemSettings
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_query import WorkerQuery
from lcm_core.domain.lablets import EXPIRABLE_SESSION_STATUSES, HOLDING_SESSION_STATUSES, LabletSessionStatus
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pool_forecast import Booking
from lcm_core.domain.workers import Resources, WorkerTelemetry
from lcm_core.errors import ConflictError, FencedError, NotFoundError, VersionConflict

A = TypeVar("A", bound=BaseModel)


class InMemoryStore(Generic[A]):
    def __init__(self, kind: str, field: str = "version") -> None:
        self.kind, self.field = kind, field
        self.items: dict[str, A] = {}
        self.saves = 0

    def stored(self, item_id: str) -> A:
        """The stored object itself (tests look, they do not change it)."""
        return self.items[item_id]

    async def get(self, item_id: str) -> A:
        if item_id not in self.items:
            raise NotFoundError(f"{self.kind} {item_id} not found")
        return self.items[item_id].model_copy(deep=True)

    def _fenced(self, item: Any, stored: Any | None, leader: LeaderCaller | None) -> dict[str, int]:
        tokens = dict(stored.fence if stored is not None else {})
        if leader is not None:
            held = tokens.get(leader.service)
            if held is not None and held > leader.epoch:
                raise FencedError(f"stale leader epoch {leader.epoch}: {self.kind} {item.id} was written by "
                                  f"{leader.service} epoch {held} since")
            tokens[leader.service] = leader.epoch
        return tokens

    async def insert(self, item: Any, leader: LeaderCaller | None = None) -> None:
        if item.id in self.items:
            raise ConflictError(f"{self.kind} {item.id} already exists")
        item.fence = self._fenced(item, None, leader)
        setattr(item, self.field, 1)
        self.items[item.id] = item.model_copy(deep=True)

    async def save(self, item: Any, leader: LeaderCaller | None = None) -> None:
        stored = self.items.get(item.id)
        expected = getattr(item, self.field)
        tokens = self._fenced(item, stored, leader)
        if stored is None or getattr(stored, self.field) != expected:
            raise VersionConflict(f"{self.kind} {item.id} changed since {self.field} {expected}")
        item.fence = tokens
        setattr(item, self.field, expected + 1)
        self.items[item.id] = item.model_copy(deep=True)
        self.saves += 1


class InMemorySessions(InMemoryStore[LabletSession]):
    def __init__(self) -> None:
        super().__init__("lablet session")

    async def page(self, query: SessionQuery, skip: int = 0, limit: int = 100, sort: str = "created_at",
                   descending: bool = False) -> tuple[list[LabletSession], int]:
        found = [s for s in self.items.values()
                 if (not query.status or s.status.value in query.status)
                 and (query.definition_id is None or s.definition_id == query.definition_id)
                 and (query.worker_id is None or s.worker_id == query.worker_id)
                 and (query.owner is None or s.owner == query.owner)
                 and (not query.ids or s.id in query.ids)]
        found.sort(key=lambda s: (getattr(s, sort), s.id), reverse=descending)
        return [s.model_copy(deep=True) for s in found[skip:skip + limit]], len(found)

    async def overdue(self, now: datetime, limit: int = 500) -> list[str]:
        return [s.id for s in self.items.values()
                if s.status in EXPIRABLE_SESSION_STATUSES and s.timeslot_end <= now][:limit]

    async def holding_on(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        return {s.id: s.worker_id for s in self.items.values()
                if s.id in session_ids and s.status in HOLDING_SESSION_STATUSES}

    async def observed_for_definition(self, definition_id: str, statuses: Sequence[str],
                                      limit: int = 1000) -> list[LabletSession]:
        found = [s for s in self.items.values() if s.definition_id == definition_id
                 and s.status.value in statuses and s.observed_resources is not None]
        return sorted(found, key=lambda s: s.observed_at or s.updated_at)[-limit:]

    async def waiting_for_pool(self, pool_id: str, fits: Resources | None = None) -> WaitingDemand:
        found = [s for s in self.items.values() if s.status is LabletSessionStatus.PENDING
                 and s.last_decision is not None and s.last_decision.waiting_for_pool == pool_id]
        held = [s for s in found if fits is None or (
            (not fits.cpu_cores or s.resource_requirements.cpu_cores <= fits.cpu_cores)
            and (not fits.memory_gb or s.resource_requirements.memory_gb <= fits.memory_gb))]
        return WaitingDemand(sessions=len(held), cpu_cores=sum(s.resource_requirements.cpu_cores for s in held),
                             memory_gb=sum(s.resource_requirements.memory_gb for s in held),
                             too_large=len(found) - len(held))

    async def booked_for_track(self, lab_track: str, start: datetime, end: datetime, limit: int) -> list[Booking]:
        found = sorted((s for s in self.items.values() if s.lab_track == lab_track
                        and (s.status is LabletSessionStatus.PENDING or s.status in HOLDING_SESSION_STATUSES)
                        and s.timeslot_start < end and s.timeslot_end > start),
                       key=lambda s: (s.timeslot_start, s.id))
        return [Booking(session_id=s.id, timeslot_start=s.timeslot_start, timeslot_end=s.timeslot_end,
                        cpu_cores=s.resource_requirements.cpu_cores, memory_gb=s.resource_requirements.memory_gb,
                        worker_id=s.worker_id, definition_id=s.definition_id) for s in found[:limit]]


class InMemoryDefinitions(InMemoryStore[LabletDefinition]):
    def __init__(self) -> None:
        super().__init__("lablet definition", field="revision")
        self.snapshots: dict[tuple[str, int], LabletDefinition] = {}

    async def insert(self, item: Any, leader: LeaderCaller | None = None) -> None:
        if any(d.name == item.name for d in self.items.values()):
            raise ConflictError(f"a lablet definition named {item.name!r} already exists")
        await super().insert(item, leader)
        self.snapshots[(item.id, item.version)] = item.model_copy(deep=True)

    async def save(self, item: Any, leader: LeaderCaller | None = None) -> None:
        await super().save(item, leader)
        self.snapshots[(item.id, item.version)] = item.model_copy(deep=True)

    async def by_name(self, name: str) -> LabletDefinition | None:
        return next((d.model_copy(deep=True) for d in self.items.values() if d.name == name), None)

    async def get_version(self, definition_id: str, version: int) -> LabletDefinition:
        if (definition_id, version) not in self.snapshots:
            raise NotFoundError(f"lablet definition {definition_id} has no version {version}")
        return self.snapshots[(definition_id, version)].model_copy(deep=True)

    async def versions(self, definition_id: str) -> list[LabletDefinition]:
        return [d.model_copy(deep=True) for (did, _), d in sorted(self.snapshots.items()) if did == definition_id]

    async def page(self, status: Sequence[str], lab_track: str | None, skip: int,
                   limit: int) -> tuple[list[LabletDefinition], int]:
        found = sorted((d for d in self.items.values() if (not status or d.status.value in status)
                        and (lab_track is None or d.lab_track == lab_track)), key=lambda d: d.name)
        return [d.model_copy(deep=True) for d in found[skip:skip + limit]], len(found)


class InMemoryWorkers(InMemoryStore[Worker]):
    """The workers, with the worker use case the capacity ledger needs (`ports.WorkerChanges`)."""

    def __init__(self, publisher: RecordingPublisher, clock: Any) -> None:
        super().__init__("worker")
        self._publisher = publisher
        self._clock = clock

    async def mutate(self, worker_id: str, change: WorkerChange, attempts: int | None = None,
                     leader: LeaderCaller | None = None) -> Worker:
        done = await versioned.mutate(self, worker_id, change, clock=self._clock, attempts=attempts or 8,
                                      leader=leader, after_commit=self._published)
        return done.aggregate

    async def _published(self, _worker: Worker, events: list[DomainEvent]) -> None:
        await self._publisher.publish(events)

    async def with_reservations(self) -> list[Worker]:
        return [w.model_copy(deep=True) for w in self.items.values() if w.capacity.reservations]


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        self.events.extend(events)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class InMemoryKeys:
    """The sessions' etcd keys."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def session_key(self, session_id: str, name: str) -> str:
        return f"/lcm/sessions/{session_id}/{name}"

    def pool_key(self, pool_id: str, name: str) -> str:
        return f"/lcm/pools/{pool_id}/{name}"

    async def put_json(self, key: str, value: dict[str, Any]) -> bool:
        self.values[key] = value
        return True

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)

    async def delete_prefix(self, prefix: str) -> None:
        for key in [k for k in self.values if k.startswith(prefix)]:
            del self.values[key]


class InMemoryWorkerStore(InMemoryStore[Worker]):
    """The worker documents as `WorkerService` reads and writes them (`ports.WorkerStore`)."""

    def __init__(self) -> None:
        super().__init__("worker")

    async def get_many(self, worker_ids: Any) -> dict[str, Worker]:
        return {wid: self.items[wid].model_copy(deep=True) for wid in worker_ids if wid in self.items}

    async def by_instance_ids(self, instance_ids: Any) -> dict[str, Worker]:
        wanted = set(instance_ids)
        return {w.aws_instance_id: w.model_copy(deep=True) for w in self.items.values()
                if w.aws_instance_id in wanted and w.aws_instance_id is not None}

    async def insert_many(self, workers: Sequence[Worker], leader: LeaderCaller | None = None) -> set[str]:
        taken = {w.aws_instance_id for w in self.items.values()}
        inserted = set()
        for worker in workers:
            if worker.aws_instance_id not in taken:
                await self.insert(worker, leader)
                taken.add(worker.aws_instance_id)
                inserted.add(worker.id)
        return inserted

    async def save_many(self, workers: Sequence[Worker], leader: LeaderCaller | None = None) -> set[str]:
        lost = set()
        for worker in workers:
            try:
                await self.save(worker, leader)
            except VersionConflict:
                lost.add(worker.id)
        return lost

    async def with_reservations(self) -> list[Worker]:
        return [w.model_copy(deep=True) for w in self.items.values() if w.capacity.reservations]

    async def all(self, query: WorkerQuery | None = None, *, brief: bool = False) -> list[Worker]:
        query = query or WorkerQuery()
        found = [w for w in self.items.values()
                 if (query.include_terminated or w.status.value != "terminated")
                 and (query.pool_id is None or w.pool_id == query.pool_id)
                 and (not query.ids or w.id in query.ids)]
        return [w.model_copy(deep=True) for w in sorted(found, key=lambda w: w.name)]


class InMemoryTelemetry:
    """Each worker's latest telemetry under its own version (`ports.TelemetryStore`)."""

    def __init__(self) -> None:
        self.items: dict[str, WorkerTelemetry] = {}
        self.writes = 0
        self.before_store: Any = None
        """Called (once) before the next write: a test's way to let another writer come first."""

    async def get(self, worker_id: str) -> WorkerTelemetry | None:
        found = self.items.get(worker_id)
        return found.model_copy(deep=True) if found is not None else None

    async def get_many(self, worker_ids: Any, *, summary: bool = False) -> dict[str, WorkerTelemetry]:
        return {wid: self.items[wid].model_copy(deep=True) for wid in worker_ids if wid in self.items}

    async def store_many(self, telemetry: Sequence[WorkerTelemetry]) -> set[str]:
        if self.before_store is not None:
            hook, self.before_store = self.before_store, None
            await hook()
        lost = set()
        for item in telemetry:
            stored = self.items.get(item.worker_id)
            if (stored.version if stored is not None else 0) != item.version:
                lost.add(item.worker_id)
                continue
            item.version += 1
            self.items[item.worker_id] = item.model_copy(deep=True)
            self.writes += 1
        return lost


class InMemoryHistory:
    def __init__(self) -> None:
        self.samples: list[MetricSample] = []

    async def append(self, samples: Sequence[MetricSample], now: datetime) -> None:
        self.samples.extend(samples)

    async def recent(self, worker_id: str, since: datetime, limit: int) -> list[MetricSample]:
        return [s for s in self.samples if s.worker_id == worker_id and s.at >= since][-limit:]


class FixedSettings:
    def __init__(self, settings: SystemSettings | None = None) -> None:
        self.settings = settings or SystemSettings()

    async def get(self) -> SystemSettings:
        return self.settings


class InMemoryWorkerKeys:
    """The workers' etcd keys (desired state, licence request)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def worker_key(self, worker_id: str, name: str) -> str:
        return f"/lcm/workers/{worker_id}/{name}"

    async def put_many_json(self, items: list[tuple[str, dict[str, Any]]]) -> int:
        self.values.update(items)
        return len(items)


class RecordingWebhooks:
    def __init__(self) -> None:
        self.sent: list[tuple[list[str], dict[str, Any]]] = []

    def notify(self, urls: Sequence[str], payload: dict[str, Any]) -> None:
        self.sent.append((list(urls), payload))
