"""Worker use cases: every command loads, applies domain behaviour, saves under the version check, then
publishes the events, projects the reactive etcd keys and notifies webhooks.

A lost race (`VersionConflict` from the repository) is retried by re-reading and re-applying
(`application.versioned.mutate`), so two concurrent updates of one worker both land (no lost field) and
neither caller sees the conflict.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from control_plane_api.application import versioned
from control_plane_api.application.costs import WorkerCosts
from control_plane_api.application.ports import (
    LeadTimeSamples,
    MetricHistory,
    TelemetryStore,
    TemplateSource,
    Webhooks,
    WorkerKeys,
    WorkerStore,
)
from control_plane_api.application.settings import Publisher, SettingsService
from control_plane_api.application.worker_membership import PoolMembers
from control_plane_api.application.worker_metrics import WorkerMetrics, worker_fingerprint
from control_plane_api.domain import events as ev
from control_plane_api.domain import worker_health
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.reports import DiscoveredInstance, LicenseProgress, StatusReport
from control_plane_api.domain.worker import InstanceClaimedError, Worker, worker_id_for
from control_plane_api.domain.worker_query import WorkerQuery
from lcm_core.domain.enums import DesiredStatus
from lcm_core.domain.worker_launch import LaunchFailureReport
from lcm_core.domain.workers import WorkerSummary, WorkerTelemetry
from lcm_core.errors import ConflictError, InvalidError, LcmError, NotFoundError

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


class WorkerService(WorkerMetrics, PoolMembers):
    def __init__(self, workers: WorkerStore, settings: SettingsService, publisher: Publisher,
                 etcd: WorkerKeys, webhooks: Webhooks, templates: TemplateSource,
                 telemetry: TelemetryStore, history: MetricHistory | None = None,
                 lead_times: LeadTimeSamples | None = None,
                 clock: Callable[[], datetime] = utcnow, max_attempts: int = 8,
                 costs: WorkerCosts | None = None) -> None:
        self._store = workers
        self._lead_times = lead_times
        self._costs = costs
        self._telemetry = telemetry
        self._history = history
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

    async def _after_commit_many(self, committed: list[tuple[Worker, list[DomainEvent]]],
                                 telemetry: Mapping[str, WorkerTelemetry] | None = None) -> None:
        """One publication for a whole batch (one Redis round trip), its etcd keys in as few transactions as
        etcd allows, then the per-worker alerts.

        Every worker event carries the worker's row as it stands after the change (`summary`, the names of
        `WorkerSummary`): the browser replaces its row with it. Its telemetry columns are there when the
        change came with telemetry (a metrics report), and absent otherwise (the browser keeps its own)."""
        for worker, events in committed:
            if events:
                row = worker.to_summary((telemetry or {}).get(worker.id)).model_dump(mode="json", exclude_unset=True)
                for event in events:
                    event.data["summary"] = row
        await self._publisher.publish([e for _, events in committed for e in events])
        if self._costs is not None:  # the one place every worker change passes: its status, for the cost ledger
            await self._costs.record_workers(committed)
        await self._etcd.put_many_json([key for worker, events in committed for key in self._keys(worker, events)])
        for _, events in committed:
            await self._alert(events)
        await self._measure_lead_times([worker for worker, _ in committed])

    async def _measure_lead_times(self, workers: Sequence[Worker]) -> None:
        """Every change of a worker is committed through here (reports, requests, imports): a worker whose lead
        clock runs and that serves now gives its template a sample, and its clock stops. The sample is kept
        before the clock stops, keyed by the clock, so that a failure in between measures it once, later."""
        if self._lead_times is None:
            return
        now = self._clock()
        for sample in [s for s in (w.lead_sample(now) for w in workers) if s is not None]:
            def stop(w: Worker, _now: datetime, since: datetime = sample.started_at) -> list[DomainEvent]:
                return w.stop_lead_clock(since)

            try:
                await self._lead_times.record(sample)
                await self.mutate(sample.worker_id, stop)
            except LcmError as exc:  # the change stands; the next change of the worker measures it
                logger.warning("lead time of worker %s not recorded now: %s", sample.worker_id, exc.message)

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
        done = await versioned.mutate(self._store, worker_id, change, clock=self._clock,
                                      attempts=attempts or self._max_attempts, leader=leader,
                                      after_commit=self._after_commit, fingerprint=worker_fingerprint)
        return done.aggregate

    # ----------------------------------------------------------------- creation from a template

    async def create_from_template(self, template_name: str, region: str, name: str | None, by: str,
                                   idempotency_key: str | None = None, *, pool_id: str | None = None,
                                   lab_track: str | None = None, register_license: bool = False,
                                   park_when_ready: bool = False, leader: LeaderCaller | None = None) -> Worker:
        """A new worker to be provisioned by the worker-controller. With an idempotency key, asking again
        returns the worker the first request created. A pool's worker (`pool_id`) is a member from the start
        and serves `lab_track`; `register_license` asks for its licence once CML is first available."""
        template = await self._templates.get(template_name)
        if not template.enabled:
            raise InvalidError(f"template {template_name!r} is disabled")
        if template.regions and region not in template.regions:
            raise InvalidError(f"template {template_name!r} has no placement for {region} "
                               f"(it has {', '.join(sorted(template.regions))})")
        worker_id = worker_id_for(idempotency_key) if idempotency_key else uuid.uuid4().hex
        worker, events = Worker.requested(template, region, name or f"{template.name}-{worker_id[:8]}", worker_id,
                                          self._clock(), by, pool_id=pool_id, lab_track=lab_track,
                                          register_license=register_license, park_when_ready=park_when_ready)
        try:
            await self._store.insert(worker, leader)
        except ConflictError:
            if idempotency_key:
                return await self._store.get(worker_id)
            raise
        await self._after_commit(worker, events)
        return worker

    async def attach_instance(self, worker_id: str, found: DiscoveredInstance, by: str,
                              leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.attach_instance(found, now, by), leader=leader)

    async def record_launch_failure(self, worker_id: str, report: LaunchFailureReport, by: str,
                                    leader: LeaderCaller | None = None) -> Worker:
        """A failed attempt to launch the worker's instance (counted on the worker; see `worker_launch`)."""
        return await self.mutate(worker_id, lambda w, now: w.record_launch_failure(report, now, by), leader=leader)

    # ----------------------------------------------------------------- discovery

    async def bulk_import(self, found: Sequence[DiscoveredInstance], by: str,
                          leader: LeaderCaller | None = None) -> ImportResult:
        """Idempotent by `aws_instance_id`: a second import of the same instances changes nothing."""
        result = ImportResult()
        unique = list({f.aws_instance_id: f for f in found}.values())
        existing = await self._store.by_instance_ids(f.aws_instance_id for f in unique)
        provisioned = {f.aws_instance_id for f in unique if f.tags.get(WORKER_ID_TAG)}
        fresh = [Worker.discovered(f, self._clock(), by) for f in unique
                 if f.aws_instance_id not in existing and f.aws_instance_id not in provisioned]
        inserted = await self._store.insert_many([w for w, _ in fresh], leader)
        await self._after_commit_many([(w, events) for w, events in fresh if w.id in inserted])
        result.created = [w.id for w, _ in fresh if w.id in inserted]
        result.workers.update((w.aws_instance_id, w) for w, _ in fresh if w.id in inserted and w.aws_instance_id)
        if len(inserted) < len(fresh):  # another import created some of them meanwhile
            existing.update(await self._store.by_instance_ids(w.aws_instance_id for w, _ in fresh
                                                               if w.id not in inserted and w.aws_instance_id))
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
            before = worker_fingerprint(worker)
            events = worker.refresh_from_discovery(instance, now, by)
            if not events and worker_fingerprint(worker) == before:
                result.unchanged.append(worker.id)
                continue
            worker.updated_at = now
            changed.append((worker, events, instance))
        lost = await self._store.save_many([w for w, _, _ in changed], leader)
        committed = [(w, events) for w, events, _ in changed if w.id not in lost]
        await self._after_commit_many(committed)
        result.updated += [w.id for w, _ in committed]
        for worker, _, instance in changed:
            if worker.id not in lost:
                continue
            before_version = worker.version
            def refresh(w: Worker, now: datetime, i: DiscoveredInstance = instance) -> list[DomainEvent]:
                return w.refresh_from_discovery(i, now, by)

            updated = await self.mutate(worker.id, refresh, leader=leader)
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
                def flag(w: Worker, _now: datetime, i: str = instance.aws_instance_id, d: str = worker.id
                         ) -> list[DomainEvent]:
                    return w.flag_duplicate(i, d)

                await self.mutate(worker_id, flag, leader=leader)
            adopted[instance.aws_instance_id] = worker
        return adopted

    async def _import_one(self, instance: DiscoveredInstance, conflict: str | None = None,
                          leader: LeaderCaller | None = None) -> Worker:
        worker, events = Worker.discovered(instance, self._clock(), "worker-controller-discovery", conflict)
        try:
            await self._store.insert(worker, leader)
        except ConflictError:  # imported meanwhile by another call: that one stands
            return (await self._store.by_instance_ids([instance.aws_instance_id]))[instance.aws_instance_id]
        await self._after_commit(worker, events)
        return worker

    # ----------------------------------------------------------------- reports

    async def update_status(self, worker_id: str, report: StatusReport, by: str,
                            leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.apply_status_report(report, now, by), leader=leader)

    async def license_progress(self, worker_id: str, progress: LicenseProgress, by: str,
                               leader: LeaderCaller | None = None) -> Worker:
        return await self.mutate(worker_id, lambda w, now: w.apply_license_progress(progress, now, by),
                                 leader=leader)

    # ----------------------------------------------------------------- reads

    async def get(self, worker_id: str) -> Worker:
        return await self._store.get(worker_id)

    async def detail(self, worker_id: str) -> tuple[Worker, WorkerTelemetry | None]:
        """A worker and its latest telemetry (None while it has never been measured)."""
        worker = await self._store.get(worker_id)
        return worker, await self._telemetry.get(worker_id)

    async def page(self, query: WorkerQuery, *, offset: int, limit: int, sort: str = "name",
                   descending: bool = False) -> tuple[list[Worker], dict[str, WorkerTelemetry], int]:
        """A page of workers (without their histories) and the telemetry their rows show."""
        workers, total = await self._store.page(query, skip=offset, limit=limit, sort=sort, descending=descending,
                                                 brief=True)
        return workers, await self._telemetry.get_many((w.id for w in workers), summary=True), total

    async def summaries(self, query: WorkerQuery) -> list[WorkerSummary]:
        """Every matching worker's row (the event stream's snapshot)."""
        workers = await self._store.all(query, brief=True)
        telemetry = await self._telemetry.get_many((w.id for w in workers), summary=True)
        return [w.to_summary(telemetry.get(w.id)) for w in workers]

    async def controller_page(self, query: WorkerQuery, *, offset: int, limit: int) -> tuple[list[Worker], int]:
        """A page of workers as controllers read them (no histories, no telemetry)."""
        return await self._store.page(query, skip=offset, limit=limit, brief=True)

    async def unseen(self, instance_ids: Sequence[str]) -> list[Worker]:
        """Workers with an instance, not terminated, whose instance is not among `instance_ids`."""
        return await self._store.unseen(instance_ids)

    async def count_by_status_and_health(self) -> dict[tuple[str, str], int]:
        return await self._store.count_by_status_and_health()

    async def with_reservations(self) -> list[Worker]:
        """Workers holding at least one lablet-session reservation (without their histories)."""
        return await self._store.with_reservations()

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
