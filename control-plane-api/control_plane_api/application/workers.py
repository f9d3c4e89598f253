"""Worker use cases: every command loads, applies domain behaviour, saves under the version check, then
publishes the events, projects the reactive etcd keys and notifies webhooks.

A lost race (`VersionConflict` from the repository) is retried by re-reading and re-applying
(`application.versioned.mutate`), so two concurrent updates of one worker both land (no lost field) and
neither caller sees the conflict.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from control_plane_api.application import versioned
from control_plane_api.application.settings import Publisher, SettingsService
from control_plane_api.domain import events as ev
from control_plane_api.domain import worker_health
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.metric_history import MetricSample, sample_of
from control_plane_api.domain.reports import DiscoveredInstance, LicenseProgress, MetricsReport, StatusReport
from control_plane_api.domain.worker import InstanceClaimedError, Worker
from control_plane_api.infrastructure.etcd_keys import EtcdKeys
from control_plane_api.infrastructure.mongo_metrics import MetricHistoryRepository
from control_plane_api.infrastructure.mongo_settings import TemplateRepository
from control_plane_api.infrastructure.mongo_workers import WorkerRepository
from control_plane_api.infrastructure.webhooks import WebhookNotifier
from lcm_core.domain.enums import DesiredStatus
from lcm_core.errors import ConflictError, InvalidError, NotFoundError

logger = logging.getLogger(__name__)

Change = Callable[[Worker, datetime], list[DomainEvent]]
#: Events after which the worker-controller must look at the worker again (etcd `desired_state` key).
_DESIRED_EVENTS = frozenset({ev.WORKER_DESIRED_STATUS_CHANGED, ev.WORKER_REFRESH_REQUESTED, ev.WORKER_CREATED})
#: Tag the worker-controller puts on instances it provisions, so that discovery adopts them.
WORKER_ID_TAG = "lcm:worker-id"


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    workers: dict[str, Worker] = field(default_factory=dict)
    """Every imported instance's worker as it stands after the import, by instance id."""


@dataclass
class BatchResult:
    updated: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    retried: int = 0


def _fingerprint(worker: Worker) -> dict[str, Any]:
    return worker.model_dump(exclude={"updated_at", "version", "last_seen_at"})


class WorkerService:
    def __init__(self, workers: WorkerRepository, settings: SettingsService, publisher: Publisher,
                 etcd: EtcdKeys, webhooks: WebhookNotifier, templates: TemplateRepository,
                 history: MetricHistoryRepository | None = None,
                 clock: Callable[[], datetime] = utcnow, max_attempts: int = 8) -> None:
        self.workers = workers
        self.history = history
        self._templates = templates
        self._settings = settings
        self._publisher = publisher
        self._etcd = etcd
        self._webhooks = webhooks
        self._clock = clock
        self._max_attempts = max_attempts

    # ----------------------------------------------------------------- plumbing

    async def _after_commit(self, worker: Worker, events: list[DomainEvent]) -> None:
        if events:
            await self._after_commit_many([(worker, events)])

    async def _after_commit_many(self, committed: list[tuple[Worker, list[DomainEvent]]]) -> None:
        """One publication for a whole batch (one Redis round trip), its etcd keys in as few transactions as
        etcd allows, then the per-worker alerts."""
        await self._publisher.publish([e for _, events in committed for e in events])
        await self._etcd.put_many_json([key for worker, events in committed for key in self._keys(worker, events)])
        for _, events in committed:
            await self._alert(events)

    def _keys(self, worker: Worker, events: list[DomainEvent]) -> list[tuple[str, dict[str, Any]]]:
        """The etcd keys these events change (desired state, licence request) and their new values.

        The licence key is what the worker-controller watches to act on a licence: it is written when the
        pending action or the status changed, not for a detail (node count, expiry): each write wakes the
        controller up, and a controller woken by its own report would report again. An update that does not
        say what changed is taken to have changed both."""
        types = {e.type for e in events}
        keys: list[tuple[str, dict[str, Any]]] = []

        def moves_license_key(event: DomainEvent) -> bool:
            if event.type == ev.WORKER_LICENSE_REQUESTED:
                return True
            return event.type == ev.WORKER_LICENSE_UPDATED and not {"status", "pending_action"}.isdisjoint(
                event.data.get("changed", ("status", "pending_action")))

        if types & _DESIRED_EVENTS:
            keys.append((self._etcd.worker_key(worker.id, "desired_state"), {
                "worker_id": worker.id, "desired_status": worker.desired_status, "reason": worker.desired_reason,
                "refresh_requested_at": worker.refresh_requested_at, "version": worker.version,
            }))
        if any(moves_license_key(e) for e in events):
            keys.append((self._etcd.worker_key(worker.id, "license"), {
                "worker_id": worker.id, "action": worker.license.pending_action,
                "status": worker.license.status, "version": worker.version,
            }))
        return keys

    async def _alert(self, events: list[DomainEvent]) -> None:
        """Alerts and their ends (threshold crossed or cleared, worker unreachable or critical, recovered):
        logged, and posted to the configured webhooks in the background."""
        notices = [(event, text) for event in events if (text := worker_health.notification(event)) is not None]
        if not notices:
            return
        hooks = [str(u) for u in (await self._settings.get()).monitoring.notification_webhooks]
        for event, text in notices:
            logger.log(logging.WARNING if event.type in worker_health.ALERTING_EVENTS else logging.INFO, "%s", text)
            if hooks:
                self._webhooks.notify(hooks, {"text": text, "event": event.envelope()})

    async def mutate(self, worker_id: str, change: Change, attempts: int | None = None,
                     leader: LeaderCaller | None = None) -> Worker:
        """Load → change → save(version); on a lost race, re-read and re-apply (bounded): `versioned.mutate`.
        `leader`: the controller leader the change comes from, fenced in storage (None for an operator's)."""
        done = await versioned.mutate(self.workers, worker_id, change, clock=self._clock,
                                      attempts=attempts or self._max_attempts, leader=leader,
                                      after_commit=self._after_commit, fingerprint=_fingerprint)
        return done.aggregate

    # ----------------------------------------------------------------- creation from a template

    async def create_from_template(self, template_name: str, region: str, name: str | None, by: str,
                                   idempotency_key: str | None = None) -> Worker:
        """A new worker to be provisioned by the worker-controller. With an idempotency key, asking again
        returns the worker the first request created."""
        template = await self._templates.get(template_name)
        if not template.enabled:
            raise InvalidError(f"template {template_name!r} is disabled")
        if template.regions and region not in template.regions:
            raise InvalidError(f"template {template_name!r} has no placement for {region} "
                               f"(it has {', '.join(sorted(template.regions))})")
        worker_id = uuid.uuid5(uuid.NAMESPACE_URL, f"lcm:worker:{idempotency_key}").hex if idempotency_key \
            else uuid.uuid4().hex
        worker, events = Worker.requested(template, region, name or f"{template.name}-{worker_id[:8]}", worker_id,
                                          self._clock(), by)
        try:
            await self.workers.insert(worker)
        except ConflictError:
            if idempotency_key:
                return await self.workers.get(worker_id)
            raise
        await self._after_commit(worker, events)
        return worker

    async def attach_instance(self, worker_id: str, found: DiscoveredInstance, by: str,
                              leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.attach_instance(found, now, by), leader=leader)

    # ----------------------------------------------------------------- discovery

    async def bulk_import(self, found: Sequence[DiscoveredInstance], by: str,
                          leader: LeaderCaller | None = None) -> ImportResult:
        """Idempotent by `aws_instance_id`: a second import of the same instances changes nothing."""
        result = ImportResult()
        unique = list({f.aws_instance_id: f for f in found}.values())
        existing = await self.workers.by_instance_ids(f.aws_instance_id for f in unique)
        provisioned = {f.aws_instance_id for f in unique if f.tags.get(WORKER_ID_TAG)}
        fresh = [Worker.discovered(f, self._clock(), by) for f in unique
                 if f.aws_instance_id not in existing and f.aws_instance_id not in provisioned]
        inserted = await self.workers.insert_many([w for w, _ in fresh], leader)
        await self._after_commit_many([(w, events) for w, events in fresh if w.id in inserted])
        result.created = [w.id for w, _ in fresh if w.id in inserted]
        result.workers.update((w.aws_instance_id, w) for w, _ in fresh if w.id in inserted and w.aws_instance_id)
        if len(inserted) < len(fresh):  # another import created some of them meanwhile
            existing.update(await self.workers.by_instance_ids(w.aws_instance_id for w, _ in fresh
                                                               if w.id not in inserted))
        result.workers.update(await self._adopt_provisioned(unique, existing, leader))
        await self._refresh_known([i for i in unique if i.aws_instance_id not in result.workers], existing,
                                  by, result, leader)
        return result

    async def _refresh_known(self, found: Sequence[DiscoveredInstance], existing: dict[str, Worker], by: str,
                             result: ImportResult, leader: LeaderCaller | None) -> None:
        """Re-discovered workers, in bulk: every discovery cycle re-imports the whole fleet, and most of it has
        not changed. The workers loaded above are refreshed in memory; only the changed ones are written, in
        one bulk write; a lost race is retried one by one through `mutate` (re-read, re-apply)."""
        now = self._clock()
        changed: list[tuple[Worker, list[DomainEvent], DiscoveredInstance]] = []
        for instance in found:
            worker = result.workers[instance.aws_instance_id] = existing[instance.aws_instance_id]
            before = _fingerprint(worker)
            events = worker.refresh_from_discovery(instance, now, by)
            if not events and _fingerprint(worker) == before:
                result.unchanged.append(worker.id)
                continue
            worker.updated_at = now
            changed.append((worker, events, instance))
        lost = await self.workers.save_many([w for w, _, _ in changed], leader)
        committed = [(w, events) for w, events, _ in changed if w.id not in lost]
        await self._after_commit_many(committed)
        result.updated += [w.id for w, _ in committed]
        for worker, _, instance in changed:
            if worker.id not in lost:
                continue
            before_version = worker.version
            updated = await self.mutate(worker.id, lambda w, now, i=instance: w.refresh_from_discovery(i, now, by),
                                        leader=leader)
            result.workers[instance.aws_instance_id] = updated
            (result.updated if updated.version != before_version else result.unchanged).append(worker.id)

    async def _adopt_provisioned(self, found: Sequence[DiscoveredInstance], existing: dict[str, Worker],
                                 leader: LeaderCaller | None) -> dict[str, Worker]:
        """Instances tagged with a worker id belong to a worker created from a template: attach, don't import.
        Returns the adopted (or, if their worker is gone, imported) workers by instance id."""
        adopted: dict[str, Worker] = {}
        for instance in found:
            worker_id = instance.tags.get(WORKER_ID_TAG)
            if not worker_id or instance.aws_instance_id in existing:
                continue
            try:
                worker = await self.attach_instance(worker_id, instance, "worker-controller-discovery", leader)
            except NotFoundError:  # its worker is gone: import it like any other instance
                worker = await self._import_one(instance, leader=leader)
            except InstanceClaimedError as claimed:
                # A duplicate launch: importing it makes it visible (and terminable); refusing the whole
                # import would leave it billing unseen and wedge the region's discovery.
                worker = await self._import_one(instance, leader=leader, conflict=(
                    f"instance {instance.aws_instance_id} carries {WORKER_ID_TAG}={worker_id}, but that worker "
                    f"runs on instance {claimed.current}: a duplicate launch, billed until terminated"))
                logger.error("duplicate instance %s for worker %s (which runs on %s): imported as worker %s",
                             instance.aws_instance_id, worker_id, claimed.current, worker.id)
                await self.mutate(worker_id, lambda w, _now, i=instance.aws_instance_id, d=worker.id:
                                  w.flag_duplicate(i, d), leader=leader)
            adopted[instance.aws_instance_id] = worker
        return adopted

    async def _import_one(self, instance: DiscoveredInstance, conflict: str | None = None,
                          leader: LeaderCaller | None = None) -> Worker:
        worker, events = Worker.discovered(instance, self._clock(), "worker-controller-discovery", conflict)
        try:
            await self.workers.insert(worker, leader)
        except ConflictError:  # imported meanwhile by another call: that one stands
            return (await self.workers.by_instance_ids([instance.aws_instance_id]))[instance.aws_instance_id]
        await self._after_commit(worker, events)
        return worker

    # ----------------------------------------------------------------- reports

    async def update_status(self, worker_id: str, report: StatusReport, by: str,
                            leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.apply_status_report(report, now, by), leader=leader)

    async def update_metrics(self, worker_id: str, report: MetricsReport, by: str,
                             leader: LeaderCaller | None = None) -> Worker:
        worker = await self._apply_metrics(worker_id, report, by, leader)
        await self._record_history([worker])
        return worker

    async def _apply_metrics(self, worker_id: str, report: MetricsReport, by: str,
                             leader: LeaderCaller | None = None) -> Worker:
        monitoring = (await self._settings.get()).monitoring
        return await self.mutate(worker_id, lambda w, now: w.apply_metrics(report, monitoring, now, by),
                                 leader=leader)

    async def _record_history(self, workers: Sequence[Worker]) -> None:
        """One utilisation sample per reported worker, for the dashboard's charts (one round trip)."""
        if self.history is None or not workers:
            return
        now = self._clock()
        samples = [s for s in (sample_of(w, now) for w in workers) if s is not None]
        await self.history.append(samples, now)

    async def metric_history(self, worker_id: str, minutes: float, limit: int) -> list[MetricSample]:
        await self.workers.get(worker_id)  # 404 for an unknown worker rather than an empty history
        if self.history is None:
            return []
        return await self.history.recent(worker_id, self._clock() - timedelta(minutes=minutes), limit)

    async def update_metrics_batch(self, reports: dict[str, MetricsReport], by: str,
                                   leader: LeaderCaller | None = None) -> BatchResult:
        """Many workers in one round trip each way: one read, one bulk write, conflicts retried one by one."""
        result = BatchResult()
        monitoring = (await self._settings.get()).monitoring
        loaded = await self.workers.get_many(reports)
        result.not_found = [wid for wid in reports if wid not in loaded]
        now = self._clock()
        pending: list[tuple[Worker, list[DomainEvent]]] = []
        for wid, worker in loaded.items():
            events = worker.apply_metrics(reports[wid], monitoring, now, by)
            worker.updated_at = now
            pending.append((worker, events))
        lost = await self.workers.save_many([w for w, _ in pending], leader)
        committed = [(w, events) for w, events in pending if w.id not in lost]
        result.updated = [w.id for w, _ in committed]
        # Publication (Redis) and the chart samples (MongoDB) are independent: one round trip's time for both.
        await asyncio.gather(self._after_commit_many(committed), self._record_history([w for w, _ in committed]))
        retried = []
        for wid in lost:
            result.retried += 1
            retried.append(await self._apply_metrics(wid, reports[wid], by, leader))
            result.updated.append(wid)
        await self._record_history(retried)
        return result

    async def detect_idle(self, worker_id: str, by: str, leader: LeaderCaller | None = None) -> Worker:
        idle = (await self._settings.get()).idle
        return await self.mutate(worker_id, lambda w, now: w.detect_idle(idle, now, by), leader=leader)

    async def license_progress(self, worker_id: str, progress: LicenseProgress, by: str,
                               leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.apply_license_progress(progress, now, by),
                                 leader=leader)

    # ----------------------------------------------------------------- operator requests

    async def request_desired_status(self, worker_id: str, desired: DesiredStatus, by: str,
                                     reason: str | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.request_desired_status(desired, now, by, reason))

    async def drain(self, worker_id: str, then: DesiredStatus, by: str, reason: str | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.request_drain(then, now, by, reason))

    async def undrain(self, worker_id: str, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.cancel_drain(now, by))

    async def set_idle_detection(self, worker_id: str, enabled: bool, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.set_idle_detection(enabled, now, by))

    async def set_lab_track(self, worker_id: str, lab_track: str | None, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.set_lab_track(lab_track, now, by))

    async def request_refresh(self, worker_id: str, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.request_refresh(now, by))

    async def request_license(self, worker_id: str, action: str, by: str) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.request_license(action, now, by))
