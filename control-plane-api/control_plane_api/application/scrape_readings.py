"""What `/metrics` reads at scrape time for the alert rules (deploy/prometheus, docs/alerts.md): controller
leadership and loops, worker licences, lablet sessions left instantiating past their boot timeout.

Everything comes from what the control plane already holds (the controllers' reports, the workers, the
sessions); each read is one bounded query on an index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from control_plane_api.application.ports import BootingSessions, LicenceCounts
from control_plane_api.application.settings import ControllersOverview
from control_plane_api.domain.alert_readings import (
    DEFAULT_BOOT_TIMEOUT_SECONDS,
    LoopReading,
    authorization_class,
    loop_readings,
    reported_boot_timeout,
)
from control_plane_api.domain.events import utcnow
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.lablets import LabletSessionStatus

#: The worker statuses in which a licence matters: the worker serves (or finishes serving) lablets.
SERVING_STATUSES = (WorkerStatus.RUNNING.value, WorkerStatus.DRAINING.value)
#: The lablet-controller: its reports carry the boot timeout.
LABLET_CONTROLLER = "lablet-controller"


class ControllersView(Protocol):
    async def overview(self) -> ControllersOverview: ...


@dataclass(frozen=True)
class ReplicaReading:
    service: str
    identity: str
    is_leader: bool
    etcd_reachable: bool
    fenced_actions: int


@dataclass(frozen=True)
class ControllerReadings:
    replicas: dict[str, int] = field(default_factory=dict)
    """Replicas with a fresh report, per service (every service that ever reported, or whose key is held)."""
    leaders: dict[str, int] = field(default_factory=dict)
    """Fresh replicas shown leading, per service (0 or 1)."""
    live: list[ReplicaReading] = field(default_factory=list)
    """Each replica with a fresh report."""
    loops: list[LoopReading] = field(default_factory=list)
    """The loops of each service's leader (followers run none: their figures say nothing)."""
    election_keys_readable: bool = True
    boot_timeout_seconds: float = DEFAULT_BOOT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class LicenceReadings:
    by_status_and_license: dict[tuple[str, str], int]
    serving_by_authorization: dict[str, int]
    soonest_expiry: datetime | None


class ScrapeReadings:
    def __init__(self, controllers: ControllersView, licences: LicenceCounts, sessions: BootingSessions,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._controllers = controllers
        self._licences = licences
        self._sessions = sessions
        self._clock = clock

    async def controllers(self) -> ControllerReadings:
        overview = await self._controllers.overview()
        replicas: dict[str, int] = {}
        leaders: dict[str, int] = {}
        live: list[ReplicaReading] = []
        loops: list[LoopReading] = []
        lablet_reports = []
        for service, status in overview.controllers.items():
            fresh = [replica for replica in status.replicas if not replica.stale]
            replicas[service] = len(fresh)
            leaders[service] = sum(1 for replica in fresh if replica.is_leader)
            for replica in fresh:
                report = replica.model_extra or {}
                fenced = report.get("fenced_actions")
                live.append(ReplicaReading(
                    service, replica.identity, replica.is_leader, report.get("etcd_reachable") is not False,
                    fenced if isinstance(fenced, int) and not isinstance(fenced, bool) else 0))
                if replica.is_leader:
                    loops += loop_readings(service, replica.identity, report.get("loops"))
            if service == LABLET_CONTROLLER:
                # The freshest first; a stale report still tells the setting (its replica may be the one down).
                lablet_reports = [r.model_extra or {} for r in sorted(status.replicas, key=lambda r: r.stale)]
        timeout = reported_boot_timeout(lablet_reports) or DEFAULT_BOOT_TIMEOUT_SECONDS
        return ControllerReadings(replicas, leaders, live, loops, overview.etcd_reachable, timeout)

    async def licences(self) -> LicenceReadings:
        authorizations: dict[str, int] = {}
        for reported, count in (await self._licences.count_by_authorization(SERVING_STATUSES)).items():
            label = authorization_class(reported)
            authorizations[label] = authorizations.get(label, 0) + count
        return LicenceReadings(await self._licences.count_by_status_and_license(), authorizations,
                               await self._licences.soonest_license_expiry(SERVING_STATUSES))

    async def sessions_past_boot_timeout(self, boot_timeout_seconds: float) -> int:
        """Sessions still instantiating longer than the boot timeout: the lablet-controller moves them to
        stopping at that deadline, so any left is a controller that does not act."""
        before = self._clock() - timedelta(seconds=boot_timeout_seconds)
        return await self._sessions.count_in_status_since_before(LabletSessionStatus.INSTANTIATING.value, before)
