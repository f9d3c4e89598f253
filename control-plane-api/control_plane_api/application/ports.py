"""What the application needs of the world, as small Protocols (ports).

The lablet use cases (definitions, sessions, the capacity ledger), the worker pools, settings, templates,
controller status and the event relay depend on these, never on MongoDB, Redis or etcd themselves; the composition root
(`bootstrap`) wires the adapters of `infrastructure` to them, and unit tests wire in-memory fakes. Each
Protocol names only the methods its users call. An adapter that cannot reach its store raises
`lcm_core.errors.UnavailableError` (503); a lost version race is a `VersionConflict`, a deposed leader's
write a `FencedError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from control_plane_api.domain.controller_status import KeyHolder
from control_plane_api.domain.event_log import LoggedEvent, LogState
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.lablet_definition import LabletDefinition
from control_plane_api.domain.lablet_queries import SessionQuery
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.lead_times import LeadKind, LeadSample
from control_plane_api.domain.metric_history import MetricSample
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.domain.system_settings import SystemSettings, WorkerTemplate
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_query import WorkerQuery
from lcm_core.domain.enums import DesiredStatus
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pool_forecast import Booking
from lcm_core.domain.workers import Resources, WorkerSummary, WorkerTelemetry

# ----------------------------------------------------------------- events


class Publisher(Protocol):
    """Publishes committed domain events (the event relay: the durable log, then every replica's SSE clients)."""

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...


class EventLog(Protocol):
    """The durable, ordered event log (`infrastructure.event_log.RedisEventLog`). Every method raises
    `UnavailableError` when the log cannot be reached."""

    max_length: int

    async def state(self) -> LogState: ...

    async def epoch(self) -> str: ...

    async def append(self, event: DomainEvent, uid: str, origin: str) -> str: ...

    async def append_many(self, items: list[tuple[DomainEvent, str]], origin: str) -> list[str]: ...

    async def read_after(self, after: str, count: int = 1000) -> list[LoggedEvent]: ...

    async def wait_after(self, after: str, block_ms: int, count: int = 500) -> list[LoggedEvent]: ...


# ----------------------------------------------------------------- lablets


class DefinitionStore(Protocol):
    """Lablet definitions (the head document of each, and a snapshot of every version)."""

    async def get(self, definition_id: str) -> LabletDefinition: ...

    async def by_name(self, name: str) -> LabletDefinition | None: ...

    async def get_version(self, definition_id: str, version: int) -> LabletDefinition: ...

    async def versions(self, definition_id: str) -> list[LabletDefinition]: ...

    async def page(self, status: Sequence[str], lab_track: str | None, skip: int,
                   limit: int) -> tuple[list[LabletDefinition], int]: ...

    async def insert(self, definition: LabletDefinition) -> None: ...

    async def save(self, definition: LabletDefinition, leader: LeaderCaller | None = None) -> None: ...


class ObservedSessions(Protocol):
    """The sessions of a definition with an observation, oldest first (what the definition page aggregates)."""

    async def observed_for_definition(self, definition_id: str, statuses: Sequence[str],
                                      limit: int = 1000) -> list[LabletSession]: ...


class ReservationHolders(Protocol):
    async def holding_on(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        """{session id: worker id} of those of the sessions that hold capacity on a worker."""
        ...


class WaitingSessions(Protocol):
    async def waiting_for_pool(self, pool_id: str, fits: Resources | None = None) -> WaitingDemand:
        """The pending sessions whose last scheduling decision waits for the pool, and what they need; with
        `fits` (an empty worker of the pool's template), those needing more CPU or memory are only counted
        (`too_large`)."""
        ...


class BookedSessions(Protocol):
    async def booked_for_track(self, lab_track: str, start: datetime, end: datetime, limit: int) -> list[Booking]:
        """The sessions of the track, pending or holding a worker, whose timeslot overlaps [start, end), by
        the start of their timeslot (at most `limit`)."""
        ...


class PoolSessions(WaitingSessions, BookedSessions, Protocol):
    """What a pool reads of the sessions of its track."""


class SessionStore(ObservedSessions, ReservationHolders, PoolSessions, Protocol):
    """Lablet sessions."""

    async def get(self, session_id: str) -> LabletSession: ...

    async def page(self, query: SessionQuery, skip: int = 0, limit: int = 100, sort: str = "created_at",
                   descending: bool = False) -> tuple[list[LabletSession], int]: ...

    async def overdue(self, now: datetime, limit: int = 500) -> list[str]:
        """Ids of pending or scheduled sessions whose timeslot has ended."""
        ...

    async def insert(self, session: LabletSession) -> None: ...

    async def save(self, session: LabletSession, leader: LeaderCaller | None = None) -> None: ...


class SessionKeys(Protocol):
    """The etcd keys of sessions the lablet-controller watches (`{prefix}/sessions/{id}/{name}`), and the
    capacity request of the pool a session waits for (`{prefix}/pools/{id}/capacity_request`, which the
    autoscaler watches). Writes are best effort: a failure is logged and counted by the adapter, not raised
    (controllers resync)."""

    def session_key(self, session_id: str, name: str) -> str: ...

    def pool_key(self, pool_id: str, name: str) -> str: ...

    async def put_json(self, key: str, value: dict[str, Any]) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None: ...


WorkerChange = Callable[[Worker, datetime], list[DomainEvent]]


class WorkerChanges(Protocol):
    """The worker use case the capacity ledger changes workers through (`WorkerService.mutate`)."""

    async def mutate(self, worker_id: str, change: WorkerChange, attempts: int | None = None,
                     leader: LeaderCaller | None = None) -> Worker: ...


class ReservedWorkers(Protocol):
    async def with_reservations(self) -> list[Worker]:
        """Workers holding at least one lablet-session reservation."""
        ...


# ----------------------------------------------------------------- settings, templates, controllers


class SettingsStore(Protocol):
    async def get(self) -> SystemSettings: ...

    async def save(self, settings: SystemSettings) -> SystemSettings:
        """Store when the stored version is still `settings.version` (else `VersionConflict`)."""
        ...


class TemplateStore(Protocol):
    async def list(self) -> list[WorkerTemplate]: ...

    async def get(self, name: str) -> WorkerTemplate: ...

    async def insert(self, template: WorkerTemplate) -> WorkerTemplate: ...

    async def replace(self, template: WorkerTemplate, expected_version: int) -> WorkerTemplate: ...

    async def delete(self, name: str, expected_version: int | None) -> bool: ...


class ControllerReports(Protocol):
    """The latest status report of every controller replica."""

    async def record(self, service: str, identity: str, report: dict[str, Any], at: datetime) -> None: ...

    async def all(self) -> list[dict[str, Any]]:
        """Every stored report: {service, identity, report, received_at}."""
        ...

    async def forget_older_than(self, before: datetime) -> int:
        """Delete reports received before `before`, keeping each service's newest; how many were deleted."""
        ...


class LeaderDirectory(Protocol):
    async def leader_holders(self) -> dict[str, KeyHolder]:
        """{service: who holds its election key}; `UnavailableError` when that cannot be read."""
        ...


class WorkerRows(Protocol):
    async def __call__(self, query: WorkerQuery, /) -> list[WorkerSummary]:
        """The rows of the workers a query names (the event stream's snapshot)."""
        ...


# ----------------------------------------------------------------- workers


class WorkerStore(Protocol):
    """The versioned worker documents. `save`/`save_many` write only if nobody wrote since the read (else
    `VersionConflict`, or the ids that lost); `insert` refuses a second worker for one instance."""

    async def get(self, worker_id: str, /) -> Worker: ...
    async def get_many(self, worker_ids: Iterable[str], /) -> dict[str, Worker]: ...
    async def by_instance_ids(self, instance_ids: Iterable[str], /) -> dict[str, Worker]: ...
    async def unseen(self, instance_ids: Iterable[str], /) -> list[Worker]: ...
    async def with_reservations(self) -> list[Worker]: ...
    async def page(self, query: WorkerQuery, *, skip: int = 0, limit: int = 100, sort: str = "name",
                   descending: bool = False, brief: bool = False) -> tuple[list[Worker], int]: ...
    async def all(self, query: WorkerQuery | None = None, *, brief: bool = False) -> list[Worker]: ...
    async def count_by_status_and_health(self) -> dict[tuple[str, str], int]: ...
    async def insert(self, worker: Worker, leader: LeaderCaller | None = None, /) -> None: ...
    async def insert_many(self, workers: Sequence[Worker], leader: LeaderCaller | None = None, /) -> set[str]: ...
    async def save(self, worker: Worker, leader: LeaderCaller | None = None, /) -> None: ...
    async def save_many(self, workers: Sequence[Worker], leader: LeaderCaller | None = None, /) -> set[str]: ...


class TelemetryStore(Protocol):
    """Each worker's latest telemetry, unversioned: the newest collection wins."""

    async def get(self, worker_id: str, /) -> WorkerTelemetry | None: ...
    async def get_many(self, worker_ids: Iterable[str], /, *, summary: bool = False) -> dict[str, WorkerTelemetry]: ...
    async def store_many(self, telemetry: Sequence[WorkerTelemetry], /) -> set[str]: ...


class MetricHistory(Protocol):
    """Utilisation samples over time (the dashboard's charts)."""

    async def append(self, samples: Sequence[MetricSample], now: datetime, /) -> None: ...
    async def recent(self, worker_id: str, since: datetime, limit: int, /) -> list[MetricSample]: ...


class TemplateSource(Protocol):
    async def get(self, name: str, /) -> WorkerTemplate: ...


class WorkerKeys(Protocol):
    """The etcd keys the worker-controller watches (desired state, licence request)."""

    def worker_key(self, worker_id: str, name: str, /) -> str: ...
    async def put_many_json(self, items: list[tuple[str, dict[str, Any]]], /) -> int: ...


class Webhooks(Protocol):
    """Posts alert notifications in the background (never blocks, never raises)."""

    def notify(self, urls: Sequence[str], payload: dict[str, Any], /) -> None: ...


# ----------------------------------------------------------------- worker pools


class PoolStore(Protocol):
    """The versioned worker-pool documents. A pool's name and its lab track are unique among the pools not
    terminated: `insert` and `save` raise `ConflictError` naming the pool that holds them (the store's unique
    indexes decide a race; `conflicting` says it before a write, and while those indexes are being built)."""

    async def get(self, pool_id: str, /) -> WorkerPool: ...
    async def page(self, include_terminated: bool, skip: int, limit: int, /) -> tuple[list[WorkerPool], int]: ...
    async def live(self) -> list[WorkerPool]:
        """Every pool not terminated, without its histories."""
        ...
    async def conflicting(self, pool_id: str, name: str, lab_track: str, /) -> str | None:
        """Why another pool that is not terminated holds the name or the track (None when neither is taken)."""
        ...
    async def insert(self, pool: WorkerPool, leader: LeaderCaller | None = None, /) -> None: ...
    async def save(self, pool: WorkerPool, leader: LeaderCaller | None = None, /) -> None: ...


class TrackPools(Protocol):
    async def live_for_track(self, lab_track: str, /) -> str | None:
        """The id of the pool (not terminated) that serves the track, None when none does."""
        ...


class LeadTimeSamples(Protocol):
    """The measured lead times of templates, the newest `SAMPLES_KEPT` per template and kind."""

    async def record(self, sample: LeadSample, /) -> bool:
        """Keep the sample (False when it was already kept: one clock measured twice)."""
        ...

    async def recent(self, template_name: str, kind: LeadKind, limit: int, /) -> list[float]:
        """The seconds of the newest `limit` samples, oldest first."""
        ...


class PoolKeys(Protocol):
    """The etcd keys of pools the autoscaler watches (`{prefix}/pools/{id}/{name}`); best effort, like the
    sessions' keys."""

    def pool_key(self, pool_id: str, name: str, /) -> str: ...
    async def put_json(self, key: str, value: dict[str, Any], /) -> bool: ...
    async def delete_prefix(self, prefix: str, /) -> None: ...


class PoolWorkers(Protocol):
    """The worker use cases a pool acts through (`WorkerService`)."""

    async def get(self, worker_id: str) -> Worker: ...

    async def members(self, pool_id: str) -> list[WorkerSummary]: ...

    async def create_from_template(self, template_name: str, region: str, name: str | None, by: str,
                                   idempotency_key: str | None = None, *, pool_id: str | None = None,
                                   lab_track: str | None = None, register_license: bool = False,
                                   park_when_ready: bool = False, leader: LeaderCaller | None = None) -> Worker: ...

    async def join_pool(self, worker_id: str, pool_id: str, lab_track: str, by: str) -> tuple[Worker, bool]: ...

    async def leave_pool(self, worker_id: str, pool_id: str, pool_track: str, by: str,
                         restore_track: str | None = None) -> tuple[Worker, bool]: ...

    async def follow_pool_track(self, worker_id: str, pool_id: str, lab_track: str, by: str) -> Worker: ...

    async def recall_member(self, worker_id: str, pool_id: str, by: str) -> Worker: ...

    async def resume_member(self, worker_id: str, pool_id: str, by: str,
                            leader: LeaderCaller | None = None) -> Worker: ...

    async def retire_member(self, worker_id: str, pool_id: str, then: DesiredStatus, by: str,
                            leader: LeaderCaller | None = None) -> Worker: ...


# ----------------------------------------------------------------- what /metrics reads for the alert rules


class LicenceCounts(Protocol):
    """Worker licences counted by MongoDB (no worker is loaded), for `/metrics`."""

    async def count_by_status_and_license(self) -> dict[tuple[str, str], int]:
        """{(worker status, licence status): workers}."""
        ...

    async def count_by_authorization(self, statuses: Sequence[str], /) -> dict[str | None, int]:
        """{authorization status as CML reported it (None: never reported): workers in `statuses`}."""
        ...

    async def soonest_license_expiry(self, statuses: Sequence[str], /) -> datetime | None:
        """The earliest licence expiry among workers in `statuses`; None when none has one."""
        ...


class BootingSessions(Protocol):
    async def count_in_status_since_before(self, status: str, before: datetime, /) -> int:
        """Sessions in `status` that entered it before `before`."""
        ...
