"""Composition root: builds the infrastructure adapters and the use cases of one CPA process."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from pymongo.errors import PyMongoError

from control_plane_api.application.costs import CostService
from control_plane_api.application.event_relay import EventRelay
from control_plane_api.application.fleet_snapshot import FleetSnapshots
from control_plane_api.application.lablet_capacity import CapacityLedger
from control_plane_api.application.lablet_definitions import DefinitionService
from control_plane_api.application.lablet_sessions import SessionService
from control_plane_api.application.login_throttle import LoginLimits, LoginThrottle
from control_plane_api.application.pools import PoolService
from control_plane_api.application.scrape_readings import ScrapeReadings
from control_plane_api.application.settings import ControllerStatusService, SettingsService, TemplateService
from control_plane_api.application.worker_shutdown import WorkerShutdown
from control_plane_api.application.workers import WorkerService
from control_plane_api.domain.worker_capacity import PortRange
from control_plane_api.infrastructure.cpu_pool import CpuPool
from control_plane_api.infrastructure.dependencies import Infrastructure
from control_plane_api.infrastructure.etcd_keys import EtcdKeys
from control_plane_api.infrastructure.event_log import RedisEventLog
from control_plane_api.infrastructure.identity import LocalUsers, SessionStore, TokenVerifier
from control_plane_api.infrastructure.mongo_costs import HoldingRepository, IntervalRepository, TotalsRepository
from control_plane_api.infrastructure.mongo_lablets import DefinitionRepository, SessionRepository
from control_plane_api.infrastructure.mongo_lead_times import LeadTimeRepository
from control_plane_api.infrastructure.mongo_metrics import MetricHistoryRepository
from control_plane_api.infrastructure.mongo_pools import PoolRepository
from control_plane_api.infrastructure.mongo_settings import (
    ControllerStatusRepository,
    SettingsRepository,
    TemplateRepository,
)
from control_plane_api.infrastructure.mongo_telemetry import TelemetryRepository
from control_plane_api.infrastructure.mongo_workers import WorkerRepository
from control_plane_api.infrastructure.oidc import OidcClient, OidcLogin
from control_plane_api.infrastructure.webhooks import WebhookNotifier
from control_plane_api.settings import ControlPlaneSettings

logger = logging.getLogger(__name__)


def _oidc_client(settings: ControlPlaneSettings) -> OidcClient | None:
    if not (settings.oidc_issuer and settings.oidc_login_client_id):
        return None
    secret = settings.oidc_login_client_secret
    return OidcClient(issuer=settings.oidc_issuer, client_id=settings.oidc_login_client_id,
                      client_secret=secret.get_secret_value() if secret else None, scopes=settings.oidc_login_scopes)


class Indexed(Protocol):
    async def ensure_indexes(self) -> None: ...


class Contended(Protocol):
    @property
    def lost_races(self) -> int: ...


@dataclass
class ControlPlane:
    settings: ControlPlaneSettings
    infrastructure: Infrastructure
    relay: EventRelay
    etcd: EtcdKeys
    workers: WorkerService
    system_settings: SettingsService
    templates: TemplateService
    controllers: ControllerStatusService
    webhooks: WebhookNotifier
    tokens: TokenVerifier
    sessions: SessionStore
    local_users: LocalUsers
    logins: LoginThrottle
    oidc: OidcLogin
    definitions: DefinitionService
    lablet_sessions: SessionService
    pools: PoolService
    shutdown: WorkerShutdown
    snapshots: FleetSnapshots
    costs: CostService
    readings: ScrapeReadings
    """What `/metrics` reads for the alert rules."""
    indexed: list[Indexed] = field(default_factory=list)
    """The repositories whose MongoDB indexes are ensured at start-up."""
    versioned: dict[str, Contended] = field(default_factory=dict)
    """The version-checked stores by what they hold, for the count of writes that lost a race."""
    _index_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _sweep_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: ControlPlaneSettings) -> ControlPlane:
        infra = Infrastructure.connect(settings)
        db = infra.mongo[settings.mongodb_database]
        stream, length = settings.event_log_stream, settings.event_log_max_length
        relay = EventRelay(RedisEventLog(infra.redis, stream, length),
                           tail_log=RedisEventLog(infra.redis_tail, stream, length),
                           queue_size=settings.sse_client_queue_size,
                           append_timeout=settings.dependency_timeout_seconds)
        etcd = EtcdKeys(infra.etcd, settings.etcd_prefix, settings.dependency_timeout_seconds)
        webhooks = WebhookNotifier()
        template_repository = TemplateRepository(db["worker_templates"])
        system_settings = SettingsService(SettingsRepository(db["settings"]), relay,
                                          idle_threshold_minutes=settings.idle_threshold_minutes,
                                          fleet=settings)
        worker_repository = WorkerRepository(db["workers"])
        pool_repository = PoolRepository(db["worker_pools"])
        cost_intervals = IntervalRepository(db["cost_intervals"])
        cost_holdings = HoldingRepository(db["cost_holdings"])
        # The report's sums run in a thread (the default): they are pure-Python loops, which give the event loop
        # the interpreter lock every few milliseconds; sending 100,000 records to the CPU pool's process would
        # hold it for seconds while they are pickled.
        costs = CostService(cost_intervals, cost_holdings, TotalsRepository(db["cost_totals"]),
                            templates=template_repository, pools=pool_repository)
        history = MetricHistoryRepository(db["worker_metrics"], timedelta(hours=settings.metrics_history_hours))
        telemetry = TelemetryRepository(db["worker_telemetry"])
        lead_times = LeadTimeRepository(db["lead_time_samples"])
        workers = WorkerService(worker_repository, system_settings, relay, etcd, webhooks,
                                templates=template_repository, telemetry=telemetry, history=history,
                                lead_times=lead_times, costs=costs)
        session_repository = SessionRepository(db["lablet_sessions"])
        definition_repository = DefinitionRepository(db["lablet_definitions"], db["lablet_definition_versions"])
        definitions = DefinitionService(definition_repository, session_repository, relay, off_loop=CpuPool())
        ledger = CapacityLedger(workers, worker_repository, session_repository,
                                PortRange(settings.lablet_port_range_start, settings.lablet_port_range_end),
                                orphan_grace_seconds=settings.lablet_orphan_grace_seconds)
        lablet_sessions = SessionService(session_repository, definitions, ledger, relay, etcd, pool_repository,
                                         review_ratio=settings.lablet_observation_review_ratio, costs=costs)
        pools = PoolService(pool_repository, workers, template_repository, session_repository, relay, etcd,
                            lead_times)
        controller_reports = ControllerStatusRepository(db["controller_status"])
        controllers = ControllerStatusService(
            controller_reports, relay, etcd,
            retention=timedelta(seconds=settings.controller_status_retention_seconds))

        return cls(
            settings=settings, infrastructure=infra, relay=relay, etcd=etcd, workers=workers,
            definitions=definitions, lablet_sessions=lablet_sessions, pools=pools,
            shutdown=WorkerShutdown(workers, lablet_sessions),
            snapshots=FleetSnapshots(workers.summaries), costs=costs,
            system_settings=system_settings,
            templates=TemplateService(template_repository, relay),
            controllers=controllers,
            readings=ScrapeReadings(controllers, worker_repository, session_repository),
            webhooks=webhooks,
            tokens=TokenVerifier(settings),
            # Session keys sit beside the event stream, whose name is already one per installation.
            sessions=SessionStore(infra.redis, settings.session_secret.get_secret_value(),
                                  settings.session_ttl_minutes * 60, prefix=f"{stream}:sessions"),
            local_users=LocalUsers(settings.local_users_file, concurrency=settings.login_hash_concurrency,
                                   wait_seconds=settings.login_hash_wait_seconds),
            logins=LoginThrottle(LoginLimits(
                per_address_per_minute=settings.login_per_address_per_minute,
                per_minute=settings.login_per_minute, free_failures=settings.login_free_failures,
                max_backoff_seconds=settings.login_max_backoff_seconds,
                account_failures=settings.login_account_failures)),
            oidc=OidcLogin(_oidc_client(settings), settings.session_secret.get_secret_value()),
            indexed=[worker_repository, history, definition_repository, session_repository, pool_repository,
                     lead_times, cost_intervals, cost_holdings, controller_reports],
            versioned={"worker": worker_repository, "worker_telemetry": telemetry,
                       "lablet_definition": definition_repository, "lablet_session": session_repository,
                       "pool": pool_repository},
        )

    def lost_races(self) -> dict[str, int]:
        """Writes that lost a version race since start, by what they wrote (`/metrics`)."""
        return {name: store.lost_races for name, store in self.versioned.items()}

    async def _ensure_indexes(self) -> None:
        """Retry until MongoDB answers: the unique `aws_instance_id` index is what makes imports idempotent."""
        delay = 0.5
        while True:
            try:
                for repository in self.indexed:
                    await repository.ensure_indexes()
                return
            except PyMongoError as exc:
                logger.warning("MongoDB indexes not ensured yet (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _sweep_lablets(self) -> None:
        """Expire overdue sessions and release orphaned reservations, on every replica (version-guarded)."""
        while True:
            await asyncio.sleep(self.settings.lablet_sweep_interval_seconds)
            try:
                await self.lablet_sessions.expire_overdue()
                await self.lablet_sessions.ledger.release_orphans()
            except Exception:  # the sweep must outlive any single failure (Mongo down, a bad document)
                logger.exception("lablet sweep failed; retrying at the next interval")

    async def start(self) -> None:
        self._index_task = asyncio.create_task(self._ensure_indexes(), name="ensure-indexes")
        self._sweep_task = asyncio.create_task(self._sweep_lablets(), name="lablet-sweep")
        await self.relay.start()

    async def stop(self) -> None:
        for task in (self._index_task, self._sweep_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.relay.stop()
        await self.webhooks.aclose()
        self.local_users.close()
        await self.infrastructure.close()
