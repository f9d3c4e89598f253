"""Pure rules of the Worker aggregate: derived utilisation, health classification, idle eligibility.

Kept apart from the aggregate so that each rule can be read (and tested) on its own. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings
from control_plane_api.domain.worker_health import CML_API, stale_metrics
from control_plane_api.domain.worker_state import Activity, CmlSystemHealth, CmlSystemInfo, Telemetry
from lcm_core.domain.enums import HealthStatus, LicenseStatus, WorkerStatus

#: EC2 status-check values that mean the instance or its host is broken.
FAILED_EC2_CHECKS = frozenset({"impaired", "failed", "insufficient-data-failed"})


def percent(part: float | None, whole: float | None) -> float | None:
    """`part / whole` in percent, rounded to 0.1; None when either is unknown or `whole` is 0."""
    if part is None or whole is None or whole <= 0:
        return None
    return round(max(0.0, min(100.0, 100.0 * part / whole)), 1)


@dataclass(frozen=True)
class Utilisation:
    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None
    cpu_source: str | None


def derive_utilisation(telemetry: Telemetry) -> Utilisation:
    """CML-native values are preferred (they see the hypervisor); CloudWatch is the fallback for CPU."""
    info: CmlSystemInfo = telemetry.cml.system_info
    cpu = info.all_cpu_percent
    source: str | None = "cml"
    if cpu is None:
        cpu, source = telemetry.cloudwatch.cpu_utilization, "cloudwatch"
    if cpu is None:
        source = None
    memory = percent(info.all_memory_used, info.all_memory_total)
    disk = percent(info.all_disk_used, info.all_disk_total)
    return Utilisation(
        cpu_percent=None if cpu is None else round(max(0.0, min(100.0, cpu)), 1),
        memory_percent=memory,
        disk_percent=disk,
        cpu_source=source,
    )


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


def _unhealthy_computes(health: CmlSystemHealth) -> list[str]:
    bad = []
    for compute_id, compute in health.computes.items():
        flags_ok = compute.get("valid") is not False and compute.get("lld_connected") is not False
        admission = compute.get("admission_state")
        if not flags_ok or (admission is not None and admission != "READY"):
            bad.append(str(compute.get("hostname") or compute_id))
    return bad


def classify_health(
    *,
    telemetry: Telemetry,
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
    for name, value in (("system", ec2.system_status), ("instance", ec2.instance_status)):
        if value is not None and value.lower() in FAILED_EC2_CHECKS:
            critical.append(f"EC2 {name} status check {value}")
    health = telemetry.cml.system_health
    if health.controller and health.controller.get("valid") is False:
        critical.append(f"CML controller unhealthy{health_note}")
    if license_status in (LicenseStatus.INVALID, LicenseStatus.EXPIRED):
        critical.append(f"licence {license_status.value}")
    if critical:
        return HealthStatus.CRITICAL, critical
    degraded = [f"CML {key.removeprefix(f'{CML_API}.')} failed" + (f" ({s.error})" if s.error else "")
                for key, s in sorted(stale.items()) if key.startswith(f"{CML_API}.")]
    unhealthy = [f"compute {name} unhealthy{health_note}" for name in _unhealthy_computes(health)]
    degraded += unhealthy
    if health.valid is False and not unhealthy:
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
    *, status: WorkerStatus, activity: Activity, idle: IdleSettings, active_now: bool, now: datetime,
    sessions: int = 0,
) -> IdleVerdict:
    """The auto-pause rule: idle longer than the threshold, enabled globally and for this worker, outside the
    snooze window after a resume, running, and holding no lablet session (a booked session whose lab is not
    started yet, or whose nodes are all stopped, still needs its worker)."""
    if active_now:
        return IdleVerdict(None, False, "activity seen")
    if sessions:
        return IdleVerdict(now, False, f"holds {sessions} lablet session(s)")  # idle counts from the last one
    since = activity.idle_since or activity.last_activity_at or now
    if status is not WorkerStatus.RUNNING:
        return IdleVerdict(activity.idle_since, False, f"status is {status.value}")
    if not (idle.enabled and idle.auto_pause):
        return IdleVerdict(since, False, "auto-pause disabled in settings")
    if not activity.idle_detection_enabled:
        return IdleVerdict(since, False, "idle detection disabled for this worker")
    if activity.resumed_at and now < activity.resumed_at + timedelta(minutes=idle.snooze_minutes_after_resume):
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


#: CML runs at most this many nodes without a registered licence (unregistered, evaluation, lapsed).
UNLICENSED_NODE_LIMIT = 5


def node_limit(status: LicenseStatus, reported: int | None, known: bool) -> int | None:
    """The most nodes CML runs on a worker, with its licence as it stands.

    Registered: what CML's licensing reports (None if it does not say, e.g. an unknown product). Any other
    status: CML's number if it gives one (a host being deregistered is still licensed), else the unlicensed
    limit. `known` is False while CML has never told its licensing: then nothing is claimed (None)."""
    if status is LicenseStatus.REGISTERED or not known:
        return reported
    return reported if reported is not None else UNLICENSED_NODE_LIMIT
