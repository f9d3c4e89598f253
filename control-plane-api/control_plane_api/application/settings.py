"""Use cases of SystemSettings, WorkerTemplates and controller status reports (over `application.ports`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from control_plane_api.application.ports import (
    ControllerReports,
    LeaderDirectory,
    Publisher,
    SettingsStore,
    TemplateStore,
)
from control_plane_api.domain import events as ev
from control_plane_api.domain.controller_status import KeyHolder, StoredReport, judge_service
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.system_settings import (
    DiscoverySettings,
    IdleSettings,
    MonitoringSettings,
    SystemSettings,
    WorkerTemplate,
)
from lcm_core.domain.types import Count
from lcm_core.errors import UnavailableError
from lcm_core.settings import FleetDefaults

logger = logging.getLogger(__name__)

__all__ = ["ControllerStatusService", "ControllersOverview", "Publisher", "SettingsChange", "SettingsService",
           "TemplateService"]


class SettingsChange(BaseModel):
    """A partial update: sections given replace the stored ones; `version` guards against lost updates."""

    model_config = ConfigDict(extra="forbid")

    version: Count
    discovery: DiscoverySettings | None = None
    monitoring: MonitoringSettings | None = None
    idle: IdleSettings | None = None


class SettingsService:
    """Reads are cached for a moment: every metrics update needs the thresholds."""

    def __init__(self, repository: SettingsStore, publisher: Publisher,
                 clock: Callable[[], datetime] = utcnow, cache_seconds: float = 2.0,
                 idle_threshold_minutes: float | None = None, fleet: FleetDefaults | None = None) -> None:
        self._idle_threshold = idle_threshold_minutes
        self._fleet = fleet
        self._repo = repository
        self._publisher = publisher
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, SystemSettings] | None = None

    async def get(self) -> SystemSettings:
        if self._cached and time.monotonic() - self._cached[0] < self._cache_seconds:
            return self._cached[1]
        current = self._with_deployment_defaults(await self._repo.get())
        self._cached = (time.monotonic(), current)
        return current

    def _with_deployment_defaults(self, stored: SystemSettings) -> SystemSettings:
        """Sections an operator never set show what the deployment's environment makes the services use."""
        update: dict[str, Any] = {}
        if "idle" not in stored.customized and self._idle_threshold is not None:
            update["idle"] = stored.idle.model_copy(update={"threshold_minutes": self._idle_threshold})
        fleet = self._fleet
        if fleet is not None:
            # model_copy, not validation: the environment may be shorter than an operator may set (tests, dev).
            if "discovery" not in stored.customized:
                update["discovery"] = stored.discovery.model_copy(update={
                    "enabled": fleet.discovery_enabled, "regions": list(fleet.discovery_regions),
                    "ami_name_pattern": fleet.discovery_ami_name,
                    "scan_interval_seconds": fleet.discovery_interval_seconds})
            if "monitoring" not in stored.customized:
                update["monitoring"] = stored.monitoring.model_copy(
                    update={"metrics_poll_interval_seconds": fleet.metrics_poll_interval_seconds})
        return stored.model_copy(update=update) if update else stored

    async def update(self, change: SettingsChange, by: str) -> SystemSettings:
        self._cached = None
        current = await self._repo.get()
        sections = change.model_dump(exclude={"version"}, exclude_none=True)
        updated = current.model_copy(update={
            **{k: getattr(change, k) for k in sections}, "version": change.version,
            "customized": sorted(set(current.customized) | set(sections)),
            "updated_at": self._clock(), "updated_by": by,
        })
        effective = self._with_deployment_defaults(await self._repo.save(updated))
        await self._publisher.publish([DomainEvent(
            type=ev.SETTINGS_UPDATED, data={"sections": sorted(sections), "version": effective.version, "by": by,
                                            "settings": effective.model_dump(mode="json")})])
        return effective


class TemplateService:
    def __init__(self, repository: TemplateStore, publisher: Publisher,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._repo = repository
        self._publisher = publisher
        self._clock = clock

    async def list(self) -> list[WorkerTemplate]:
        return await self._repo.list()

    async def get(self, name: str) -> WorkerTemplate:
        return await self._repo.get(name)

    async def _emit(self, type_: str, name: str, by: str, **data: Any) -> None:
        await self._publisher.publish([DomainEvent(type=type_, subject_id=name,
                                                   data={"name": name, "by": by, **data})])

    async def create(self, template: WorkerTemplate, by: str) -> WorkerTemplate:
        now = self._clock()
        stored = await self._repo.insert(template.model_copy(update={"created_at": now, "updated_at": now}))
        await self._emit(ev.TEMPLATE_CREATED, stored.name, by, version=stored.version)
        return stored

    async def replace(self, template: WorkerTemplate, expected_version: int, by: str) -> WorkerTemplate:
        previous = await self._repo.get(template.name)
        stored = await self._repo.replace(
            template.model_copy(update={"created_at": previous.created_at, "updated_at": self._clock()}),
            expected_version)
        await self._emit(ev.TEMPLATE_UPDATED, stored.name, by, version=stored.version)
        return stored

    async def delete(self, name: str, expected_version: int | None, by: str) -> bool:
        deleted = await self._repo.delete(name, expected_version)
        if deleted:
            await self._emit(ev.TEMPLATE_DELETED, name, by)
        return deleted


class ReplicaStatus(BaseModel):
    """A controller replica's last report as shown: the report's own fields (service, identity, epoch, loops,
    summary, ...) as the replica sent them, with `is_leader` as judged and why."""

    model_config = ConfigDict(extra="allow")

    service: str
    identity: str
    is_leader: bool
    """Whether it is shown leading: it holds the election key (or, without etcd, claims the latest term)."""
    reported_is_leader: bool
    """What its last report said."""
    stale: bool
    stale_after_seconds: float
    reason: str
    received_at: datetime


class ServiceStatus(BaseModel):
    leader: str | None
    leader_epoch: int | None
    replicas: list[ReplicaStatus]


class ControllersOverview(BaseModel):
    controllers: dict[str, ServiceStatus]
    timestamp: datetime
    etcd_reachable: bool
    """False when the election keys could not be read: leadership is then as the live replicas report it."""


class ControllerStatusService:
    """The latest report of each controller replica, judged against the etcd election key: which replicas are
    stale and who leads (`domain.controller_status`)."""

    def __init__(self, repository: ControllerReports, publisher: Publisher, leaders: LeaderDirectory,
                 clock: Callable[[], datetime] = utcnow, retention: timedelta = timedelta(hours=1)) -> None:
        self._repo = repository
        self._publisher = publisher
        self._leaders = leaders
        self._clock = clock
        self._retention = retention
        # Deleting is a write on the read path (each scrape): once a minute is enough to keep reads bounded.
        self._forget_every = min(retention, timedelta(minutes=1))
        self._forgot_at: datetime | None = None

    async def record(self, report: dict[str, Any]) -> None:
        now = self._clock()
        service, identity = str(report["service"]), str(report["identity"])
        await self._repo.record(service, identity, report, now)
        await self._publisher.publish([DomainEvent(type=ev.CONTROLLER_STATUS, subject_id=service,
                                                   data={**report, "received_at": now.isoformat()})])

    async def overview(self) -> ControllersOverview:
        """Every service's leader and replicas. The leader is who holds the service's election key; when etcd
        cannot be read the live replicas' claims are shown instead (and `etcd_reachable` says so). Each replica
        is its last report with `is_leader` as shown (never a stale one), the leadership it reported, `stale`,
        `stale_after_seconds`, `reason` and `received_at`."""
        try:
            holders: dict[str, KeyHolder] | None = await self._leaders.leader_holders()
        except UnavailableError as exc:
            logger.warning("controllers overview without the election keys: %s", exc)
            holders = None
        now = self._clock()
        await self._forget_gone_replicas(now)
        by_service: dict[str, list[StoredReport]] = {}
        for doc in await self._repo.all():
            by_service.setdefault(doc["service"], []).append(
                StoredReport(doc["service"], doc["identity"], doc["report"], doc["received_at"]))
        for service in holders or {}:
            by_service.setdefault(service, [])
        services: dict[str, ServiceStatus] = {}
        for service, reports in sorted(by_service.items()):
            holder = (holders or {}).get(service)
            shown = judge_service(reports, holder, now, etcd_known=holders is not None)
            services[service] = ServiceStatus(leader=shown.leader, leader_epoch=shown.leader_epoch, replicas=[
                ReplicaStatus.model_validate({
                    **stored.report, "service": stored.service, "identity": stored.identity,
                    "reported_is_leader": stored.claims_leadership, "is_leader": replica.is_leader,
                    "stale": replica.stale, "stale_after_seconds": replica.stale_after_seconds,
                    "reason": replica.reason, "received_at": stored.received_at})
                for stored, replica in shown.replicas])
        return ControllersOverview(controllers=services, timestamp=now, etcd_reachable=holders is not None)

    async def _forget_gone_replicas(self, now: datetime) -> None:
        """A replica's identity is its pod name, new at every rollout or reschedule: without this, each read
        would walk the last report of every pod the controllers ever had."""
        if self._forgot_at is not None and now - self._forgot_at < self._forget_every:
            return
        self._forgot_at = now
        forgotten = await self._repo.forget_older_than(now - self._retention)
        if forgotten:
            logger.info("forgot %d controller replica reports older than %s", forgotten, self._retention)
