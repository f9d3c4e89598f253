"""The Worker aggregate's licence, telemetry and idle behaviour (a mixin of `Worker`, split off to keep each
file readable). It works on the fields `Worker` declares; no I/O.

A metrics report is applied to the worker's last telemetry (`WorkerTelemetry`, stored apart) and returns the
new telemetry with the events: the worker document itself changes only when what it decides from changes
(EC2 state, CML service, licence, health level, an alert, an auto-pause).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.reports import LicenseProgress
from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings
from control_plane_api.domain.worker_health import (
    HEALTH_ALERT,
    HealthAlert,
    health_alert,
    stale_metrics,
    threshold_transitions,
    track_stale,
)
from control_plane_api.domain.worker_rules import (
    classify_health,
    judge_idle,
    metric_readings,
    threshold_violations,
)
from control_plane_api.domain.worker_state import (
    ALERT_HISTORY_LIMIT,
    Activity,
    Alert,
    Capacity,
    License,
)
from lcm_core.domain.cml_snapshot import CmlLicenseInfo, CmlTelemetrySnapshot, merge_snapshot
from lcm_core.domain.enums import (
    DesiredStatus,
    HealthStatus,
    LicenseStatus,
    PauseReason,
    ServiceStatus,
    WorkerStatus,
)
from lcm_core.domain.workers import IdleState, WorkerMetricsReport, WorkerTelemetry, node_limit, utilisation
from lcm_core.errors import ConflictError

_REGISTRATION_TO_LICENSE = {
    "COMPLETED": LicenseStatus.REGISTERED,
    "REGISTERED": LicenseStatus.REGISTERED,
    "NOT_REGISTERED": LicenseStatus.UNREGISTERED,
    "UNREGISTERED": LicenseStatus.UNREGISTERED,
    "IN_PROGRESS": LicenseStatus.REGISTERING,
    "PENDING": LicenseStatus.REGISTERING,
    "EXPIRED": LicenseStatus.EXPIRED,
    "FAILED": LicenseStatus.INVALID,
}


class TelemetryBehaviour:
    """Behaviour only: `Worker` supplies the fields and the helpers named below."""

    if TYPE_CHECKING:
        id: str
        name: str
        pool_id: str | None
        status: WorkerStatus
        desired_status: DesiredStatus | None
        service_status: ServiceStatus
        cml_version: str | None
        license: License
        health_status: HealthStatus
        status_changed_at: datetime | None
        activity: Activity
        capacity: Capacity
        active_alerts: list[str]
        alerts: list[Alert]
        @property
        def lifecycle_phase(self) -> str: ...

        def _event(self, type_: str, **data: Any) -> DomainEvent: ...
        def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None,
                    by: str | None) -> None: ...
        def observe_ec2_state(self, ec2_state: str, now: datetime, reason: str | None, by: str,
                              observed_at: datetime | None = None) -> list[DomainEvent]: ...
        def _set_service_status(self, new: ServiceStatus, now: datetime, by: str) -> list[DomainEvent]: ...
        def request_desired_status(self, desired: DesiredStatus, now: datetime, by: str,
                                   reason: str | None = None, *, force: bool = False) -> list[DomainEvent]: ...

    # ------------------------------------------------------------------ licence

    def request_license(self, action: str, now: datetime, by: str) -> list[DomainEvent]:
        """`register` or `deregister`; idempotent while the same request is pending."""
        if self.status not in (WorkerStatus.RUNNING, WorkerStatus.DRAINING):
            raise ConflictError(f"worker {self.id} is {self.status.value}; licensing needs it running")
        target = LicenseStatus.REGISTERING if action == "register" else LicenseStatus.DEREGISTERING
        if self.license.pending_action == action:
            return []
        old = self.license.status
        self.license.pending_action, self.license.status = action, target
        self.license.last_error, self.license.updated_at = None, now
        self._derive_node_limit()
        self._record("license", old.value, target.value, now, f"{action} requested", by)
        return [self._event(ev.WORKER_LICENSE_REQUESTED, action=action, by=by)]

    def apply_license_progress(self, progress: LicenseProgress, now: datetime, by: str) -> list[DomainEvent]:
        """The controller reports how a licence request went: in progress, done or failed.

        The controller reports while it polls CML, mostly the same thing again: a report that changes nothing
        yields no event (and, the worker being unchanged, no write). An event would project the etcd licence
        key again, which the controller watches: it would poll and report once more, in a loop."""
        old = self.license.status
        lic = self.license
        before = lic.model_dump(exclude={"updated_at"})
        if progress.status is not None:
            lic.status = progress.status
        if progress.error is not None:
            lic.last_error = progress.error
        if progress.finished:
            lic.pending_action = None
        if progress.details is not None:
            self._merge_license(progress.details)
        if progress.restore_on_start is not None:
            lic.restore_on_start = progress.restore_on_start
        self._derive_node_limit()
        after = lic.model_dump(exclude={"updated_at"})
        changed = sorted(key for key, value in after.items() if before[key] != value)
        if not changed:
            return []
        lic.updated_at = now
        if lic.status is not old:
            self._record("license", old.value, lic.status.value, now, progress.error, by)
        return [self._event(ev.WORKER_LICENSE_UPDATED, status=lic.status.value, pending_action=lic.pending_action,
                            error=lic.last_error, node_limit=lic.node_limit, phase=self.lifecycle_phase,
                            changed=changed)]

    def _merge_license(self, report: CmlLicenseInfo, is_enterprise: bool | None = None) -> None:
        """What CML's licensing says, into the licence (`is_enterprise`: `system_health`'s word, used when
        licensing does not say)."""
        lic = self.license
        for key, value in (("registration_status", report.registration_status),
                           ("authorization_status", report.authorization_status), ("expires", report.expires),
                           ("product", report.product_license),
                           ("is_enterprise", report.is_enterprise if report.is_enterprise is not None
                            else is_enterprise)):
            if value is not None:
                setattr(lic, key, value)
        if report.node_limit is not None:
            lic.reported_node_limit = report.node_limit
        if lic.pending_action is None and report.registration_status:
            mapped = _REGISTRATION_TO_LICENSE.get(report.registration_status.upper())
            if mapped is not None:
                lic.status = mapped
            if (report.authorization_status or "").upper() == "EVAL_MODE" and mapped is not LicenseStatus.REGISTERED:
                lic.status = LicenseStatus.EVALUATION
        if (report.registration_status or "").upper() in ("NOT_REGISTERED", "UNREGISTERED"):
            # Nothing is licensed any more: a limit or expiry from the last registration would mislead.
            lic.reported_node_limit, lic.expires = report.node_limit, report.expires
        self._derive_node_limit()

    def _derive_node_limit(self) -> None:
        """Kept with the licence, so that the API, the dashboard and placement read one number."""
        lic = self.license
        known = lic.registration_status is not None or lic.status is not LicenseStatus.UNREGISTERED
        lic.node_limit = node_limit(lic.status, lic.reported_node_limit, known)

    # ------------------------------------------------------------------ telemetry

    def apply_metrics(self, report: WorkerMetricsReport, previous: WorkerTelemetry | None,
                      monitoring: MonitoringSettings, idle: IdleSettings, now: datetime,
                      by: str) -> tuple[WorkerTelemetry, list[DomainEvent]]:
        """The cycle's telemetry on top of `previous`, the utilisation, health and idleness derived from it,
        alerts raised and cleared. Returns the new telemetry and the events.

        What failed keeps its last values, marked stale (`stale`). `last_seen_at` is the last time the worker
        itself (its CML API) answered: EC2 reporting the instance running, or a CML API that did not answer,
        is no sign of life."""
        t = previous.model_copy(deep=True) if previous is not None else WorkerTelemetry(worker_id=self.id)
        at = report.collected_at

        def newer(stored_at: datetime | None) -> bool:
            """Whether this report's source is newer than what is stored of it: a report collected before
            another one that was applied first (a refresh during a cycle) rolls no source back."""
            return stored_at is None or at >= stored_at

        found: list[DomainEvent] = []
        if report.ec2 is not None:
            if report.ec2.state is not None:
                found += self.observe_ec2_state(report.ec2.state, now, "seen by metrics collection", by,
                                                observed_at=at)
            if newer(t.ec2_checked_at):
                t.ec2, t.ec2_checked_at = report.ec2, at
        if report.cloudwatch is not None and newer(t.cloudwatch_at):
            t.cloudwatch, t.cloudwatch_at = report.cloudwatch, at
        old_labs = t.labs_count
        old_license = self.license.status
        cml_news = (report.cml is not None or report.cml_unreachable is not None) and newer(t.cml_checked_at)
        if report.cml is not None and cml_news:
            t.cml, t.cml_at, t.last_seen_at = merge_snapshot(t.cml, report.cml), at, now
            self._apply_cml(report.cml, now, by, found)
            seen = report.cml.last_activity_at
            if seen is not None and (t.last_activity_at is None or seen > t.last_activity_at):
                t.last_activity_at = seen
        license_changed = self.license.status is not old_license
        if cml_news:
            t.stale, t.cml_checked_at = track_stale(t.stale, report, at), at
        t.collected_at = max(at, t.collected_at) if t.collected_at else at
        t.utilisation = utilisation(t.cml, t.cloudwatch)
        violations = threshold_violations(t.utilisation, monitoring)
        found += self._threshold_alerts(violations, metric_readings(t.utilisation, monitoring), stale_metrics(t),
                                        now)
        if self.status in (WorkerStatus.RUNNING, WorkerStatus.DRAINING):
            health, t.health_reasons = classify_health(telemetry=t, license_status=self.license.status,
                                                       violations=violations)
            found += self._set_health(health, t.health_reasons)
        else:
            t.health_reasons = [f"status is {self.status.value}"]
        found += self._judge_idle(t, idle, now, by)
        found.append(self._event(ev.WORKER_METRICS_UPDATED))
        if t.labs_count != old_labs and t.labs_count is not None:
            found.append(self._event(ev.WORKER_LABS_UPDATED, labs_count=t.labs_count, previous=old_labs))
        if license_changed:
            found.append(self._event(ev.WORKER_LICENSE_UPDATED, status=self.license.status.value,
                                     node_limit=self.license.node_limit, phase=self.lifecycle_phase,
                                     changed=["status"]))
        return t, found

    def _apply_cml(self, cml: CmlTelemetrySnapshot, now: datetime, by: str, found: list[DomainEvent]) -> None:
        """What the worker itself holds of a snapshot: CML's version, the licence, the CML service."""
        if cml.version is not None:
            self.cml_version = cml.version
        if cml.license is not None and "licensing" not in cml.errors:
            self._merge_license(cml.license, cml.is_enterprise)
        if self.status in (WorkerStatus.RUNNING, WorkerStatus.DRAINING) and cml.ready is not None:
            found += self._set_service_status(ServiceStatus.AVAILABLE if cml.ready else ServiceStatus.STARTING,
                                              now, by)

    def _set_health(self, health: HealthStatus, reasons: list[str]) -> list[DomainEvent]:
        old = self.health_status
        if health is old:
            return []
        self.health_status = health
        found = [self._event(ev.WORKER_HEALTH_CHANGED, old_health=old.value, new_health=health.value,
                             reasons=reasons)]
        change = health_alert(old, health, open_=HEALTH_ALERT in self.active_alerts,
                              serving=self.service_status is ServiceStatus.AVAILABLE)
        if change is None:
            return found
        others = [a for a in self.active_alerts if a != HEALTH_ALERT]
        self.active_alerts = sorted([*others, HEALTH_ALERT]) if change is HealthAlert.RAISED else others
        found.append(self._event(ev.WORKER_HEALTH_ALERT if change is HealthAlert.RAISED
                                 else ev.WORKER_HEALTH_RECOVERED, worker_name=self.name, health=health.value,
                                 previous_health=old.value, reasons=reasons))
        return found

    def _threshold_alerts(self, violations: dict[str, tuple[float, float]],
                          readings: dict[str, tuple[float | None, float]], stale: frozenset[str],
                          now: datetime) -> list[DomainEvent]:
        """Raised when a metric crosses its threshold (not on every cycle it stays above), cleared when it is
        back at or below it; see `worker_health.threshold_transitions`."""
        raised, cleared = threshold_transitions(self.active_alerts, violations, readings, stale)
        found = []
        for metric, (value, limit) in raised.items():
            self.alerts.append(Alert(metric=metric, value=value, threshold=limit, at=now))
            found.append(self._event(ev.WORKER_ALERT_RAISED, metric=metric, value=value, threshold=limit,
                                     worker_name=self.name))
        for metric, (value, limit) in cleared.items():
            for alert in reversed(self.alerts):
                if alert.metric == metric and alert.cleared_at is None:
                    alert.cleared_at = now
                    break
            found.append(self._event(ev.WORKER_ALERT_CLEARED, metric=metric, value=value, threshold=limit,
                                     worker_name=self.name))
        if raised or cleared:
            del self.alerts[:-ALERT_HISTORY_LIMIT]
            self.active_alerts = sorted((set(self.active_alerts) - cleared.keys()) | raised.keys())
        return found

    # ------------------------------------------------------------------ idle detection

    def _judge_idle(self, t: WorkerTelemetry, idle: IdleSettings, now: datetime, by: str) -> list[DomainEvent]:
        """Track idleness in the telemetry and, when eligible, ask for the instance to be stopped (auto-pause)."""
        active_now = (t.running_nodes or 0) > 0
        if active_now:
            t.last_activity_at = now
        started = self.status_changed_at if self.status is WorkerStatus.RUNNING else None
        marks = [m for m in (t.idle.idle_since, t.last_activity_at, started, self.activity.resumed_at)
                 if m is not None]
        verdict = judge_idle(status=self.status, idle_since=max(marks) if marks else None, idle=idle,
                             active_now=active_now, now=now,
                             detection_enabled=self.activity.idle_detection_enabled,
                             resumed_at=self.activity.resumed_at, sessions=len(self.capacity.reservations),
                             pool=self.pool_id)
        t.idle = IdleState(idle_since=verdict.idle_since, eligible_for_auto_pause=verdict.eligible_for_auto_pause,
                           verdict=verdict.reason, checked_at=now)
        if verdict.eligible_for_auto_pause and self.desired_status is not DesiredStatus.STOPPED:
            return self.request_desired_status(DesiredStatus.STOPPED, now, by,
                                               reason=PauseReason.IDLE_TIMEOUT.value)
        return []
