"""The worker use cases of metrics reports (a mixin of `WorkerService`, split off to keep each file readable):
a batch of reports applied to the workers and their telemetry, the chart samples, the history read.

A report writes the worker's telemetry under the telemetry's own version, and the versioned worker only when
the report changed what the worker decides from (docs/architecture.md, "One metrics report").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from control_plane_api.application import versioned
from control_plane_api.application.ports import MetricHistory, TelemetryStore, WorkerStore
from control_plane_api.application.settings import SettingsService
from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.metric_history import MetricSample, sample_of
from control_plane_api.domain.system_settings import SystemSettings
from control_plane_api.domain.worker import Worker
from lcm_core import tracing
from lcm_core.domain.enums import PauseReason
from lcm_core.domain.workers import MetricsBatchOutcome, WorkerMetricsReport, WorkerTelemetry
from lcm_core.errors import VersionConflict

#: A metrics report applied: the worker, its new telemetry, the events.
Applied = tuple[Worker, WorkerTelemetry, list[DomainEvent]]


def worker_fingerprint(worker: Worker) -> dict[str, Any]:
    """What tells whether a change changed the worker (its history and alerts only change along with it)."""
    return worker.model_dump(exclude={"updated_at", "version", "state_history", "alerts"})


class WorkerMetrics:
    """Behaviour only: `WorkerService` supplies the stores and the publication named below."""

    if TYPE_CHECKING:
        _store: WorkerStore
        _telemetry: TelemetryStore
        _history: MetricHistory | None
        _settings: SettingsService
        _clock: Callable[[], datetime]
        _max_attempts: int

        async def _after_commit_many(self, committed: list[tuple[Worker, list[DomainEvent]]],
                                     telemetry: Mapping[str, WorkerTelemetry] | None = None) -> None: ...

    async def update_metrics_batch(self, reports: Sequence[WorkerMetricsReport], by: str,
                                   leader: LeaderCaller | None = None) -> MetricsBatchOutcome:
        """Many workers' reports: one read of the workers and of their telemetry, one bulk write of the
        telemetry, and a versioned write only of the workers the reports changed (normally none: a health
        level, an alert, a licence, an auto-pause). A report whose worker or telemetry write lost a race (another
        report of the same worker at the same time) is applied again on top of the winner."""
        by_worker = {r.worker_id: r for r in reports}  # a worker reported twice: the last report stands
        outcome = MetricsBatchOutcome()
        # Child spans of the request's: where a slow report's time went (reading, writing, publishing).
        with tracing.tracer().start_as_current_span("metrics.load") as span:
            span.set_attribute(tracing.REPORTS_COUNT, len(by_worker))
            settings = await self._settings.get()
            loaded = await self._store.get_many(by_worker)
            previous = await self._telemetry.get_many(loaded)
        outcome.not_found = [wid for wid in by_worker if wid not in loaded]
        now = self._clock()
        applied: dict[str, Applied] = {}
        changed: list[Worker] = []
        for wid, worker in loaded.items():
            before = worker_fingerprint(worker)
            telemetry, events = worker.apply_metrics(by_worker[wid], previous.get(wid), settings.monitoring,
                                                     settings.idle, now, by)
            applied[wid] = (worker, telemetry, events)
            if worker_fingerprint(worker) != before:
                worker.updated_at = now
                changed.append(worker)
        with tracing.tracer().start_as_current_span("metrics.store") as span:
            span.set_attributes({tracing.WORKERS_COUNT: len(applied), "lcm.workers.changed": len(changed)})
            lost = await self._store.save_many(changed, leader)
            for wid in lost:  # its worker changed meanwhile: nothing of this report is stored yet
                outcome.retried += 1
                applied[wid] = await self._apply_metrics_again(by_worker[wid], settings, by, leader)
            first = [t for wid, (_, t, _) in applied.items() if wid not in lost]
            for wid in await self._telemetry.store_many(first):
                # Its telemetry was stored meanwhile (a refresh during the cycle): applied again on top of that.
                # What the first pass wrote of the worker stands, so its events are kept (but the metrics ones,
                # sent anew).
                outcome.retried += 1
                kept = [e for e in applied[wid][2]
                        if e.type not in (ev.WORKER_METRICS_UPDATED, ev.WORKER_LABS_UPDATED)]
                worker, telemetry, events = await self._apply_metrics_again(by_worker[wid], settings, by, leader)
                applied[wid] = (worker, telemetry, kept + events)
            span.set_attribute("lcm.writes.retried", outcome.retried)
        committed = [(w, events, t) for w, t, events in applied.values()]
        outcome.updated = list(applied)
        outcome.auto_paused = [w.id for w, events, _ in committed
                               if any(e.type == ev.WORKER_PAUSED and e.data.get("reason") == PauseReason.IDLE_TIMEOUT
                                      for e in events)]
        # Publication (Redis) and the chart samples (MongoDB) are independent: one round trip's time for both.
        with tracing.tracer().start_as_current_span("metrics.publish"):
            await asyncio.gather(self._after_commit_many([(w, events) for w, events, _ in committed],
                                                         {w.id: t for w, _, t in committed}),
                                 self._record_history([t for _, _, t in committed]))
        return outcome

    async def _apply_metrics_again(self, report: WorkerMetricsReport, settings: SystemSettings, by: str,
                                   leader: LeaderCaller | None) -> Applied:
        """A report whose write lost a race (its worker's or its telemetry's): re-read both and apply it again,
        the worker through `versioned.mutate`, the telemetry under its version (bounded). Its events are
        published with the batch's."""
        for _ in range(self._max_attempts):
            previous = await self._telemetry.get(report.worker_id)
            applied: list[tuple[WorkerTelemetry, list[DomainEvent]]] = []

            def change(worker: Worker, now: datetime, previous: WorkerTelemetry | None = previous,
                       applied: list[tuple[WorkerTelemetry, list[DomainEvent]]] = applied) -> list[DomainEvent]:
                before = worker_fingerprint(worker)
                applied[:] = [worker.apply_metrics(report, previous, settings.monitoring, settings.idle, now, by)]
                # The metrics event alone changes nothing of the worker: written only when the worker changed.
                return applied[0][1] if worker_fingerprint(worker) != before else []

            done = await versioned.mutate(self._store, report.worker_id, change, clock=self._clock,
                                          attempts=self._max_attempts, leader=leader, fingerprint=worker_fingerprint)
            telemetry, events = applied[0]
            if not await self._telemetry.store_many([telemetry]):
                return done.aggregate, telemetry, events
        raise VersionConflict(f"the telemetry of worker {report.worker_id} kept changing; the report is dropped",
                              worker_id=report.worker_id)

    async def _record_history(self, telemetry: Sequence[WorkerTelemetry]) -> None:
        """One utilisation sample per reported worker, for the dashboard's charts (one round trip)."""
        if self._history is None or not telemetry:
            return
        now = self._clock()
        samples = [s for s in (sample_of(t, now) for t in telemetry) if s is not None]
        await self._history.append(samples, now)

    async def metric_history(self, worker_id: str, minutes: float, limit: int) -> list[MetricSample]:
        await self._store.get(worker_id)  # 404 for an unknown worker rather than an empty history
        if self._history is None:
            return []
        return await self._history.recent(worker_id, self._clock() - timedelta(minutes=minutes), limit)
