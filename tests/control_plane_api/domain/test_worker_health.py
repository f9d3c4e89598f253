"""Honest health, without I/O: stale telemetry, health classification with reasons, alerts that open and close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_health import (
    CML_API,
    HealthAlert,
    health_alert,
    notification,
    threshold_transitions,
    track_stale,
)
from control_plane_api.domain.worker_rules import classify_health
from lcm_core.domain.cml_snapshot import CmlComputeNode, CmlTelemetrySnapshot
from lcm_core.domain.enums import HealthStatus, LicenseStatus, ServiceStatus
from lcm_core.domain.workers import Ec2Checks, StaleSource, Utilisation, WorkerMetricsReport, WorkerTelemetry

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
H = HealthStatus
GOOD_HEALTH = CmlTelemetrySnapshot(health_valid=True, controller_valid=True,
                                   computes={"c1": CmlComputeNode(id="c1", valid=True, admission_state="READY")})
BAD_CONTROLLER = CmlTelemetrySnapshot(health_valid=False, controller_valid=False)


def stale(*keys: str, error: str | None = "boom") -> dict[str, StaleSource]:
    return {key: StaleSource(since=NOW, error=error) for key in keys}


def telemetry(health: CmlTelemetrySnapshot = GOOD_HEALTH, sources: dict[str, StaleSource] | None = None,
              ec2: Ec2Checks | None = None) -> WorkerTelemetry:
    return WorkerTelemetry(worker_id="w", cml=health, stale=sources or {}, ec2=ec2 or Ec2Checks(),
                           utilisation=Utilisation(cpu_source="cml"))


# ------------------------------------------------------------------ classification (pure, table-driven)

@pytest.mark.parametrize(("case", "t", "licence", "violations", "expected", "reasons"), [
    ("all good", telemetry(), LicenseStatus.REGISTERED, {}, H.HEALTHY, []),
    ("CML API unreachable", telemetry(sources=stale(CML_API, error="connect timeout")), LicenseStatus.REGISTERED,
     {}, H.UNREACHABLE, ["CML API unreachable: connect timeout"]),
    ("unreachable wins over old bad values", telemetry(BAD_CONTROLLER, stale(CML_API, error=None)),
     LicenseStatus.EXPIRED, {}, H.UNREACHABLE, ["CML API unreachable"]),
    ("system_health failed: degraded, not healthy on its old values",
     telemetry(sources=stale("cml.system_health", error="CmlUnreachableError: 504")), LicenseStatus.REGISTERED,
     {}, H.DEGRADED, ["CML system_health failed (CmlUnreachableError: 504)"]),
    ("system_stats malformed",
     telemetry(sources=stale("cml.system_stats", error="malformed answer: none of its values could be read")),
     LicenseStatus.REGISTERED, {}, H.DEGRADED,
     ["CML system_stats failed (malformed answer: none of its values could be read)"]),
    ("a failure never makes a worker look better", telemetry(BAD_CONTROLLER, stale("cml.system_health")),
     LicenseStatus.REGISTERED, {}, H.CRITICAL, ["CML controller unhealthy (last read)"]),
    ("stale utilisation still counts, marked", telemetry(sources=stale("cml.system_stats", error=None)),
     LicenseStatus.REGISTERED, {"memory": (97.0, 90.0)}, H.DEGRADED,
     ["CML system_stats failed", "memory 97.0% > 90% (last read)"]),
    ("EC2 check failed", telemetry(ec2=Ec2Checks(system_status="impaired")), LicenseStatus.REGISTERED, {},
     H.CRITICAL, ["EC2 system status check impaired"]),
    ("licence expired", telemetry(), LicenseStatus.EXPIRED, {}, H.CRITICAL, ["licence expired"]),
    ("compute not admitted", telemetry(CmlTelemetrySnapshot(computes={"c1": CmlComputeNode(
        id="c1", hostname="cmp1", valid=True, admission_state="BLOCKED")})),
     LicenseStatus.REGISTERED, {}, H.DEGRADED, ["compute cmp1 unhealthy"]),
    ("threshold", telemetry(), LicenseStatus.REGISTERED, {"cpu": (95.0, 90.0)}, H.DEGRADED, ["cpu 95.0% > 90%"]),
])
def test_classify_health(case: str, t: WorkerTelemetry, licence: LicenseStatus,
                         violations: dict[str, tuple[float, float]], expected: HealthStatus,
                         reasons: list[str]) -> None:
    assert classify_health(telemetry=t, license_status=licence, violations=violations) == (expected, reasons), case


# ------------------------------------------------------------------ stale sources (pure)

def test_track_stale_keeps_when_a_failure_started_and_forgets_what_answered() -> None:
    def failed(**errors: str) -> WorkerMetricsReport:
        return WorkerMetricsReport(worker_id="w", collected_at=NOW, cml=CmlTelemetrySnapshot(errors=errors))

    first = track_stale({}, failed(system_health="504"), NOW)
    assert first == {"cml.system_health": StaleSource(since=NOW, error="504")}
    again = track_stale(first, failed(system_health="timeout", labs="x"), LATER)
    assert again == {"cml.system_health": StaleSource(since=NOW, error="timeout"),
                     "cml.labs": StaleSource(since=LATER, error="x")}
    down = track_stale(again, WorkerMetricsReport(worker_id="w", collected_at=NOW, cml_unreachable="reset"), LATER)
    assert down[CML_API] == StaleSource(since=LATER, error="reset")
    assert down["cml.system_health"].since == NOW  # still failing underneath
    nothing = WorkerMetricsReport(worker_id="w", collected_at=NOW)
    assert track_stale(down, nothing, LATER) == down  # no CML section: nothing learned
    assert track_stale(down, failed(), LATER) == {}


# ------------------------------------------------------------------ alert rules (pure)

@pytest.mark.parametrize(("active", "violations", "readings", "stale_metrics", "raised", "cleared"), [
    ((), {"cpu": (95.0, 90.0)}, {"cpu": (95.0, 90.0)}, (), {"cpu": (95.0, 90.0)}, {}),
    (("cpu",), {"cpu": (96.0, 90.0)}, {"cpu": (96.0, 90.0)}, (), {}, {}),  # still above: no second alert
    (("cpu",), {}, {"cpu": (40.0, 90.0)}, (), {}, {"cpu": (40.0, 90.0)}),
    (("cpu",), {}, {"cpu": (90.0, 90.0)}, (), {}, {"cpu": (90.0, 90.0)}),  # at the threshold is not above it
    (("memory",), {}, {"memory": (None, 90.0)}, (), {}, {}),  # unknown is not back to normal
    (("memory",), {}, {"memory": (10.0, 90.0)}, ("memory",), {}, {}),  # a stale value clears nothing
    ((), {"disk": (99.0, 90.0)}, {"disk": (99.0, 90.0)}, ("disk",), {}, {}),  # nor raises
    (("health",), {}, {"cpu": (1.0, 90.0)}, (), {}, {}),  # the health alert is not a threshold's
])
def test_threshold_transitions(active, violations, readings, stale_metrics, raised, cleared) -> None:
    assert threshold_transitions(active, violations, readings, stale_metrics) == (raised, cleared)


@pytest.mark.parametrize(("old", "new", "open_", "serving", "expected"), [
    (H.HEALTHY, H.UNREACHABLE, False, True, HealthAlert.RAISED),
    (H.DEGRADED, H.CRITICAL, False, True, HealthAlert.RAISED),
    (H.UNKNOWN, H.CRITICAL, False, False, HealthAlert.RAISED),
    (H.UNKNOWN, H.UNREACHABLE, False, False, None),  # CML still booting after a start: no page
    (H.UNREACHABLE, H.HEALTHY, False, True, None),  # ... and nothing to recover from
    (H.CRITICAL, H.UNREACHABLE, True, False, HealthAlert.RAISED),  # another bad level: told again
    (H.UNREACHABLE, H.DEGRADED, True, True, HealthAlert.RECOVERED),
    (H.CRITICAL, H.UNKNOWN, True, False, HealthAlert.RECOVERED),  # stopped: the alert ends, said so
    (H.UNREACHABLE, H.UNREACHABLE, True, True, None),
    (H.HEALTHY, H.DEGRADED, False, True, None),
])
def test_health_alert_rule(old: HealthStatus, new: HealthStatus, open_: bool, serving: bool,
                           expected: HealthAlert | None) -> None:
    assert health_alert(old, new, open_=open_, serving=serving) is expected


@pytest.mark.parametrize(("event", "text"), [
    (DomainEvent(ev.WORKER_ALERT_RAISED, {"worker_name": "w1", "metric": "cpu", "value": 95.0, "threshold": 80.0}),
     "LCM alert: worker w1 cpu at 95.0% exceeds 80%"),
    (DomainEvent(ev.WORKER_ALERT_CLEARED, {"worker_name": "w1", "metric": "cpu", "value": 12.5, "threshold": 80.0}),
     "LCM: worker w1 cpu back to 12.5% (threshold 80%): alert cleared"),
    (DomainEvent(ev.WORKER_HEALTH_ALERT, {"worker_name": "w1", "health": "unreachable",
                                          "previous_health": "healthy", "reasons": ["CML API unreachable"]}),
     "LCM alert: worker w1 is unreachable: CML API unreachable"),
    (DomainEvent(ev.WORKER_HEALTH_RECOVERED, {"worker_name": "w1", "health": "healthy",
                                              "previous_health": "unreachable", "reasons": []}),
     "LCM: worker w1 is no longer unreachable, now healthy"),
    (DomainEvent(ev.WORKER_METRICS_UPDATED, {"worker_id": "w1"}), None),
])
def test_notification_texts(event: DomainEvent, text: str | None) -> None:
    assert notification(event) == text


# ------------------------------------------------------------------ the aggregate

def make() -> Worker:
    worker, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                     instance_type="m5zn.metal", state="running"), NOW, "test")
    worker.service_status = ServiceStatus.AVAILABLE
    return worker


def good(at: datetime, cpu: float = 20.0) -> WorkerMetricsReport:
    cml = GOOD_HEALTH.model_copy(update={"all_cpu_percent": cpu, "all_memory_total": 100, "all_memory_used": 30,
                                         "labs_count": 1})
    return WorkerMetricsReport(worker_id="w", collected_at=at, ec2=Ec2Checks(state="running"), cml=cml)


def down(at: datetime, why: str = "connect timeout", ec2: Ec2Checks | None = None) -> WorkerMetricsReport:
    return WorkerMetricsReport(worker_id="w", collected_at=at, ec2=ec2, cml_unreachable=why)


def types(events: list[DomainEvent]) -> list[str]:
    return [e.type for e in events]


class Cycles:
    """A worker and its telemetry across metrics cycles (the telemetry is stored apart, so a test carries it)."""

    def __init__(self, worker: Worker, settings: MonitoringSettings | None = None) -> None:
        self.worker, self.settings = worker, settings or MonitoringSettings()
        self.telemetry: WorkerTelemetry | None = None

    def apply(self, report: WorkerMetricsReport, now: datetime | None = None) -> list[DomainEvent]:
        self.telemetry, events = self.worker.apply_metrics(report, self.telemetry, self.settings,
                                                           IdleSettings(enabled=False), now or report.collected_at,
                                                           "m")
        return events

    @property
    def t(self) -> WorkerTelemetry:
        assert self.telemetry is not None
        return self.telemetry


def test_a_long_system_health_failure_keeps_the_values_stale_and_the_worker_degraded() -> None:
    worker = make()
    cycles = Cycles(worker)
    cycles.apply(good(NOW))
    assert (worker.health_status, cycles.t.stale) == (H.HEALTHY, {})
    failing = WorkerMetricsReport(worker_id="w", collected_at=LATER, ec2=Ec2Checks(state="running"),
                                  cml=CmlTelemetrySnapshot(all_cpu_percent=25.0, all_memory_total=100,
                                                           all_memory_used=30,
                                                           errors={"system_health": "CmlUnreachableError: 504"}))
    for minute in range(60):
        cycles.apply(failing.model_copy(update={"collected_at": LATER + timedelta(minutes=minute)}))
    assert worker.health_status is H.DEGRADED
    assert cycles.t.health_reasons == ["CML system_health failed (CmlUnreachableError: 504)"]
    assert cycles.t.stale == {"cml.system_health": StaleSource(since=LATER, error="CmlUnreachableError: 504")}
    assert cycles.t.cml is not None
    assert (cycles.t.cml.health_valid, cycles.t.cml.computes) == (True, GOOD_HEALTH.computes)  # the last, kept
    assert cycles.t.utilisation.cpu_percent == 25.0  # system_stats answered: current
    assert cycles.t.last_seen_at == LATER + timedelta(minutes=59)  # CML answered (in part): it was seen
    cycles.apply(good(LATER + timedelta(hours=2)))
    assert (worker.health_status, cycles.t.stale) == (H.HEALTHY, {})


def test_last_seen_moves_only_when_cml_answers() -> None:
    worker = make()
    cycles = Cycles(worker)
    cycles.apply(good(NOW))
    assert cycles.t.last_seen_at == NOW
    cycles.apply(down(LATER, ec2=Ec2Checks(state="running")))
    assert worker.health_status is H.UNREACHABLE
    assert cycles.t.last_seen_at == NOW  # EC2 says running; the worker itself did not answer
    assert cycles.t.collected_at == LATER
    cycles.apply(WorkerMetricsReport(worker_id="w", collected_at=LATER + timedelta(minutes=1),
                                     ec2=Ec2Checks(state="running")))
    assert worker.health_status is H.UNREACHABLE  # nothing says CML is back
    assert cycles.t.last_seen_at == NOW


def test_unreachable_and_recovery_alert_once_each_and_threshold_alerts_clear() -> None:
    worker = make()
    cycles = Cycles(worker, MonitoringSettings(cpu_threshold=80))
    cycles.apply(good(NOW, cpu=95.0))
    assert worker.active_alerts == ["cpu"]
    events = [e for n in range(5) for e in cycles.apply(down(LATER + timedelta(minutes=n), "reset"))]
    assert types(events).count(ev.WORKER_HEALTH_ALERT) == 1
    assert ev.WORKER_ALERT_CLEARED not in types(events)  # the last CPU value is stale: it clears nothing
    assert worker.active_alerts == ["cpu", "health"]
    back = cycles.apply(good(LATER + timedelta(hours=1), cpu=10.0))
    assert types(back).count(ev.WORKER_HEALTH_RECOVERED) == 1
    cleared = [e for e in back if e.type == ev.WORKER_ALERT_CLEARED]
    assert [(e.data["metric"], e.data["value"], e.data["threshold"]) for e in cleared] == [("cpu", 10.0, 80.0)]
    assert worker.active_alerts == []
    assert [(a.metric, a.cleared_at) for a in worker.alerts] == [("cpu", LATER + timedelta(hours=1))]


def test_a_worker_whose_cml_is_still_booting_pages_nobody() -> None:
    worker = make()
    worker.service_status = ServiceStatus.STARTING
    cycles = Cycles(worker)
    assert ev.WORKER_HEALTH_ALERT not in types(cycles.apply(down(NOW, "connection refused")))
    assert worker.health_status is H.UNREACHABLE
    assert ev.WORKER_HEALTH_RECOVERED not in types(cycles.apply(good(LATER)))


def test_stopping_a_worker_with_an_open_health_alert_ends_it() -> None:
    worker = make()
    Cycles(worker).apply(WorkerMetricsReport(worker_id="w", collected_at=NOW,
                                             ec2=Ec2Checks(system_status="impaired")))
    assert (worker.health_status, worker.active_alerts) == (H.CRITICAL, ["health"])
    events = worker.observe_ec2_state("stopped", LATER, None, "reconciler")
    ended = [e for e in events if e.type == ev.WORKER_HEALTH_RECOVERED]
    assert [(e.data["previous_health"], e.data["health"]) for e in ended] == [("critical", "unknown")]
    assert worker.active_alerts == []
