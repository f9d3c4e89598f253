"""The Worker aggregate's licence, telemetry and idle behaviour (a mixin of `Worker`, split off to keep each
file readable). It works on the fields `Worker` declares; no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.reports import CmlReport, LicenseProgress, MetricsReport, compact
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
    derive_utilisation,
    judge_idle,
    metric_readings,
    node_limit,
    threshold_violations,
)
from control_plane_api.domain.worker_state import (
    ALERT_HISTORY_LIMIT,
    Activity,
    Alert,
    Capacity,
    License,
    Telemetry,
)
from lcm_core.domain.enums import (
    DesiredStatus,
    HealthStatus,
    LicenseStatus,
    PauseReason,
    ServiceStatus,
    WorkerStatus,
)
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


class WorkerTelemetry:
    """Behaviour only: `Worker` supplies the fields and the helpers named below."""

    if TYPE_CHECKING:
        id: str
        name: str
        status: WorkerStatus
        desired_status: DesiredStatus | None
        service_status: ServiceStatus
        cml_version: str | None
        license: License
        telemetry: Telemetry
        health_status: HealthStatus
        health_reasons: list[str]
        last_seen_at: datetime | None
        last_health_check_at: datetime | None
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

    def _merge_license(self, report: Any) -> None:
        lic = self.license
        for key in ("registration_status", "authorization_status", "expires", "product", "is_enterprise",
                    "nodes_in_use"):
            value = getattr(report, key)
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

    def apply_metrics(self, report: MetricsReport, monitoring: MonitoringSettings, now: datetime,
                      by: str) -> list[DomainEvent]:
        """Store the cycle's telemetry, derive utilisation and health, raise and clear alerts.

        What failed keeps its last values, marked stale (`telemetry.stale`). `last_seen_at` is the last
        time the worker itself (its CML API) answered: EC2 reporting the instance running, or a CML API
        that did not answer, is no sign of life."""
        t = self.telemetry
        seen = self.last_seen_at
        found: list[DomainEvent] = []
        if report.ec2 is not None:
            if report.ec2.state is not None:
                found += self.observe_ec2_state(report.ec2.state, now, "seen by metrics collection", by,
                                                observed_at=report.collected_at)
            t.ec2.system_status = report.ec2.system_status
            t.ec2.instance_status = report.ec2.instance_status
            t.ec2.checked_at = report.collected_at
        if report.cloudwatch is not None:
            t.cloudwatch = t.cloudwatch.model_copy(update={**report.cloudwatch.model_dump(),
                                                           "collected_at": report.collected_at})
        answered = report.cml is not None and report.cml.reachable
        old_labs = t.labs_count
        old_license = self.license.status
        if report.cml is not None and report.cml.reachable:
            self._apply_cml(report.cml, report.collected_at, now, by, found)
        license_changed = self.license.status is not old_license
        t.stale = track_stale(t.stale, report.cml, report.collected_at)
        t.collected_at = report.collected_at
        self.last_seen_at = now if answered else seen
        self.last_health_check_at = now

        util = derive_utilisation(t)
        t.cpu_percent, t.memory_percent, t.disk_percent = util.cpu_percent, util.memory_percent, util.disk_percent
        t.cpu_source = util.cpu_source
        violations = threshold_violations(util, monitoring)
        found += self._threshold_alerts(violations, metric_readings(util, monitoring), stale_metrics(t), now)
        if self.status in (WorkerStatus.RUNNING, WorkerStatus.DRAINING):
            health, reasons = classify_health(telemetry=t, license_status=self.license.status,
                                              violations=violations)
            found += self._set_health(health, reasons)
        found.append(self._event(ev.WORKER_METRICS_UPDATED, **self.metrics_payload()))
        if t.labs_count != old_labs and t.labs_count is not None:
            found.append(self._event(ev.WORKER_LABS_UPDATED, labs_count=t.labs_count, previous=old_labs))
        if license_changed:
            found.append(self._event(ev.WORKER_LICENSE_UPDATED, status=self.license.status.value,
                                     node_limit=self.license.node_limit, phase=self.lifecycle_phase,
                                     changed=["status"]))
        return found

    def _apply_cml(self, cml: CmlReport, collected_at: datetime, now: datetime, by: str,
                   found: list[DomainEvent]) -> None:
        t = self.telemetry
        if cml.system_info is not None:
            t.cml.system_info = cml.system_info
        if cml.system_health is not None:
            t.cml.system_health = cml.system_health
        if cml.version is not None:
            self.cml_version = cml.version
        if cml.license is not None:
            self._merge_license(cml.license)
        if cml.labs_count is not None:
            t.labs_count = t.cml.labs_count = cml.labs_count
        if cml.uptime_seconds is not None:
            t.uptime_seconds = t.cml.uptime_seconds = cml.uptime_seconds
        t.cml.collected_at = collected_at
        if cml.last_activity_at is not None and (self.activity.last_activity_at is None
                                                 or cml.last_activity_at > self.activity.last_activity_at):
            self.activity.last_activity_at = cml.last_activity_at
        if self.status in (WorkerStatus.RUNNING, WorkerStatus.DRAINING) and cml.ready is not None:
            found += self._set_service_status(ServiceStatus.AVAILABLE if cml.ready else ServiceStatus.STARTING,
                                              now, by)

    def _set_health(self, health: HealthStatus, reasons: list[str]) -> list[DomainEvent]:
        old = self.health_status
        self.health_reasons = reasons
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
        del self.alerts[:-ALERT_HISTORY_LIMIT]
        self.active_alerts = sorted((set(self.active_alerts) - cleared.keys()) | raised.keys())
        return found

    def metrics_payload(self) -> dict[str, Any]:
        t = self.telemetry
        return compact({
            "cpu_percent": t.cpu_percent, "memory_percent": t.memory_percent, "disk_percent": t.disk_percent,
            "cpu_source": t.cpu_source, "labs_count": t.labs_count, "health_status": self.health_status.value,
            "service_status": self.service_status.value, "collected_at": t.collected_at.isoformat()
            if t.collected_at else None,
            "running_nodes": t.cml.system_info.running_nodes,
            "phase": self.lifecycle_phase, "stale": sorted(t.stale) or None,
        }) | {"idle_since": self.activity.idle_since.isoformat() if self.activity.idle_since else None}

    # ------------------------------------------------------------------ idle detection

    def detect_idle(self, idle: IdleSettings, now: datetime, by: str) -> list[DomainEvent]:
        """Idle detection: track idleness and, when eligible, ask for the instance to be stopped (auto-pause)."""
        a = self.activity
        running_nodes = self.telemetry.cml.system_info.running_nodes or 0
        active_now = running_nodes > 0
        if active_now:
            a.last_activity_at = now
        elif a.last_activity_at is not None and (a.idle_since is None or a.last_activity_at > a.idle_since):
            a.idle_since = a.last_activity_at
        verdict = judge_idle(status=self.status, activity=a, idle=idle, active_now=active_now, now=now,
                             sessions=len(self.capacity.reservations))
        a.idle_since = verdict.idle_since
        a.eligible_for_auto_pause = verdict.eligible_for_auto_pause
        a.idle_verdict, a.idle_checked_at = verdict.reason, now
        if verdict.eligible_for_auto_pause and self.desired_status is not DesiredStatus.STOPPED:
            return self.request_desired_status(DesiredStatus.STOPPED, now, by,
                                               reason=PauseReason.IDLE_TIMEOUT.value)
        return []

    def idle_view(self) -> dict[str, Any]:
        a = self.activity
        return {"worker_id": self.id, "status": self.status.value, "last_activity_at": a.last_activity_at,
                "idle_since": a.idle_since, "eligible_for_auto_pause": a.eligible_for_auto_pause,
                "idle_verdict": a.idle_verdict, "idle_checked_at": a.idle_checked_at,
                "idle_detection_enabled": a.idle_detection_enabled, "desired_status": self.desired_status,
                "pause_reason": a.pause_reason, "paused_at": a.paused_at, "resumed_at": a.resumed_at}
