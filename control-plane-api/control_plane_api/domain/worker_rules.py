"""Pure rules of the Worker aggregate: ordinary status transitions, derived utilisation, health classification,
idle eligibility.

Kept apart from the aggregate so that each rule can be read (and tested) on its own. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings
from control_plane_api.domain.worker_health import CML_API, stale_metrics
from lcm_core.domain.enums import HealthStatus, LicenseStatus, WorkerStatus
from lcm_core.domain.workers import Utilisation, WorkerTelemetry

#: The ordinary successor(s) of each status; any other observed move is a skipped transition (recorded).
ORDINARY_SUCCESSORS: dict[WorkerStatus, frozenset[WorkerStatus]] = {
    WorkerStatus.PENDING: frozenset({WorkerStatus.PROVISIONING, WorkerStatus.STARTING, WorkerStatus.FAILED}),
    WorkerStatus.PROVISIONING: frozenset({WorkerStatus.STARTING, WorkerStatus.RUNNING, WorkerStatus.FAILED}),
    WorkerStatus.STARTING: frozenset({WorkerStatus.RUNNING, WorkerStatus.FAILED, WorkerStatus.STOPPING}),
    WorkerStatus.RUNNING: frozenset({WorkerStatus.DRAINING, WorkerStatus.STOPPING, WorkerStatus.TERMINATING}),
    WorkerStatus.DRAINING: frozenset({WorkerStatus.RUNNING, WorkerStatus.STOPPING, WorkerStatus.TERMINATING}),
    WorkerStatus.STOPPING: frozenset({WorkerStatus.STOPPED}),
    WorkerStatus.STOPPED: frozenset({WorkerStatus.STARTING, WorkerStatus.TERMINATING}),
    WorkerStatus.TERMINATING: frozenset({WorkerStatus.TERMINATED}),
    WorkerStatus.TERMINATED: frozenset(),
    WorkerStatus.FAILED: frozenset({WorkerStatus.TERMINATING, WorkerStatus.STARTING}),
    WorkerStatus.UNKNOWN: frozenset(WorkerStatus),
}

#: EC2 status-check values that mean the instance or its host is broken.
FAILED_EC2_CHECKS = frozenset({"impaired", "failed", "insufficient-data-failed"})


def metric_readings(utilisation: Utilisation, monitoring: MonitoringSettings
                    ) -> dict[str, tuple[float | None, float]]:
    """{metric: (value or None, threshold)} of every metric with a threshold."""
    return {
        "cpu": (utilisation.cpu_percent, monitoring.cpu_threshold),
        "memory": (utilisation.memory_percent, monitoring.memory_threshold),
        "disk": (utilisation.disk_percent, monitoring.disk_threshold),
    }


def threshold_violations(utilisation: Utilisation, monitoring: MonitoringSettings) -> dict[str, tuple[float, float]]:
    """{metric: (value, threshold)} for every utilisation strictly above its configured threshold."""
    return {m: (v, t) for m, (v, t) in metric_readings(utilisation, monitoring).items() if v is not None and v > t}


def classify_health(
    *,
    telemetry: WorkerTelemetry,
    license_status: LicenseStatus,
    violations: dict[str, tuple[float, float]],
) -> tuple[HealthStatus, list[str]]:
    """The health level, with the reasons that decided it (shown to operators; docs/architecture.md).

    Failed telemetry is never read as good news: an unreachable CML API is `unreachable`; a CML endpoint that
    failed degrades the worker (its last values are kept, stale); and what the last values of a stale source
    showed still counts, marked "(last read)", so that a failure never makes a worker look better."""
    stale = telemetry.stale
    if CML_API in stale:
        why = stale[CML_API].error
        return HealthStatus.UNREACHABLE, [f"CML API unreachable: {why}" if why else "CML API unreachable"]
    health_note = " (last read)" if f"{CML_API}.system_health" in stale else ""
    critical: list[str] = []
    ec2 = telemetry.ec2
    for name, value in (("system", ec2.system_status if ec2 else None),
                        ("instance", ec2.instance_status if ec2 else None)):
        if value is not None and value.lower() in FAILED_EC2_CHECKS:
            critical.append(f"EC2 {name} status check {value}")
    cml = telemetry.cml
    if cml is not None and cml.controller_valid is False:
        critical.append(f"CML controller unhealthy{health_note}")
    if license_status in (LicenseStatus.INVALID, LicenseStatus.EXPIRED):
        critical.append(f"licence {license_status.value}")
    if critical:
        return HealthStatus.CRITICAL, critical
    degraded = [f"CML {key.removeprefix(f'{CML_API}.')} failed" + (f" ({s.error})" if s.error else "")
                for key, s in sorted(stale.items()) if key.startswith(f"{CML_API}.")]
    unhealthy = [f"compute {name} unhealthy{health_note}" for name in (cml.unhealthy_computes() if cml else [])]
    degraded += unhealthy
    if cml is not None and cml.health_valid is False and not unhealthy:
        degraded.append(f"CML reports the system not valid{health_note}")
    old_values = stale_metrics(telemetry)
    degraded += [f"{metric} {value:.1f}% > {limit:g}%" + (" (last read)" if metric in old_values else "")
                 for metric, (value, limit) in violations.items()]
    if degraded:
        return HealthStatus.DEGRADED, degraded
    return HealthStatus.HEALTHY, []


@dataclass(frozen=True)
class IdleVerdict:
    idle_since: datetime | None
    eligible_for_auto_pause: bool
    reason: str


def judge_idle(
    *, status: WorkerStatus, idle_since: datetime | None, idle: IdleSettings, active_now: bool, now: datetime,
    detection_enabled: bool = True, resumed_at: datetime | None = None, sessions: int = 0,
    pool: str | None = None,
) -> IdleVerdict:
    """The auto-pause rule: idle longer than the threshold, enabled globally and for this worker, outside the
    snooze window after a resume, running, and holding no lablet session (a booked session whose lab is not
    started yet, or whose nodes are all stopped, still needs its worker).

    A worker of a pool (`pool`: its id) is never paused here: its pool scales it.

    `idle_since` is the latest of: the last activity seen, the last time the worker held a session, its last
    start and its last resume (a worker just started is not idle for the time it slept)."""
    if active_now:
        return IdleVerdict(None, False, "activity seen")
    if sessions:
        return IdleVerdict(now, False, f"holds {sessions} lablet session(s)")  # idle counts from the last one
    since = idle_since or now
    if status is not WorkerStatus.RUNNING:
        return IdleVerdict(idle_since, False, f"status is {status.value}")
    if pool is not None:
        # Its pool sizes it: a pause would make the pool launch another worker in its place.
        return IdleVerdict(since, False, f"a worker of pool {pool}: its pool decides when it stops")
    if not (idle.enabled and idle.auto_pause):
        return IdleVerdict(since, False, "auto-pause disabled in settings")
    if not detection_enabled:
        return IdleVerdict(since, False, "idle detection disabled for this worker")
    if resumed_at and now < resumed_at + timedelta(minutes=idle.snooze_minutes_after_resume):
        return IdleVerdict(since, False, "in the snooze window after a resume")
    idle_for, threshold = now - since, timedelta(minutes=idle.threshold_minutes)
    judged = f"idle for {_duration(idle_for)} (threshold {_duration(threshold)})"
    if idle_for < threshold:
        return IdleVerdict(since, False, f"{judged}, below the threshold")
    return IdleVerdict(since, True, judged)


def _duration(span: timedelta) -> str:
    """`45s`, `6 min`, `2 h 5 min`: operators read these in the dashboard."""
    seconds = int(span.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
