"""The Worker aggregate's rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings, WorkerTemplate
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_state import STATE_HISTORY_LIMIT, Reservation
from lcm_core.domain.cml_snapshot import CmlComputeNode, CmlLicenseInfo, CmlTelemetrySnapshot
from lcm_core.domain.enums import DesiredStatus, HealthStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks, Resources, WorkerMetricsReport, WorkerTelemetry
from lcm_core.errors import ConflictError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make(state: str = "running") -> Worker:
    worker, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                     instance_type="m5zn.metal", state=state), NOW, "test")
    return worker


def report(at: datetime = NOW, **parts: object) -> WorkerMetricsReport:
    return WorkerMetricsReport.model_validate({"worker_id": "w", "collected_at": at, **parts})


def metrics(**cml: object) -> WorkerMetricsReport:
    return report(cml=CmlTelemetrySnapshot.model_validate(cml))


def apply(worker: Worker, sent: WorkerMetricsReport, previous: WorkerTelemetry | None = None, *,
          monitoring: MonitoringSettings | None = None, idle: IdleSettings | None = None,
          now: datetime | None = None) -> tuple[WorkerTelemetry, list[DomainEvent]]:
    return worker.apply_metrics(sent, previous, monitoring or MonitoringSettings(), idle or IdleSettings(enabled=False),
                                now or sent.collected_at, "test")


def types(events) -> list[str]:
    return [e.type for e in events]


def test_ec2_states_map_to_statuses_and_skips_are_recorded() -> None:
    worker = make("pending")
    assert worker.status is WorkerStatus.STARTING
    events = worker.observe_ec2_state("stopped", NOW, None, "test")
    assert worker.status is WorkerStatus.STOPPED
    assert events[0].data["skipped"] is True
    assert "skipped from starting" in worker.state_history[-1].reason
    assert worker.observe_ec2_state("stopped", NOW, None, "test") == []
    events = worker.observe_ec2_state("shutting-down", NOW, None, "test")
    assert worker.status is WorkerStatus.TERMINATING
    assert events[0].data["skipped"] is False
    assert "worker.terminated" in types(worker.observe_ec2_state("terminated", NOW, None, "test"))
    assert worker.observe_ec2_state("no-such-state", NOW, None, "test")[0].data["new_status"] == "unknown"


def test_state_history_is_bounded() -> None:
    worker = make()
    for n in range(STATE_HISTORY_LIMIT + 20):
        worker.observe_ec2_state("stopped" if n % 2 == 0 else "running", NOW, None, "test")
    assert len(worker.state_history) == STATE_HISTORY_LIMIT


def test_cml_values_are_preferred_over_cloudwatch_and_labelled() -> None:
    worker = make()
    telemetry, _ = apply(worker, report(cloudwatch=CloudWatchSample(cpu_utilization=70.0),
                                        cml=CmlTelemetrySnapshot(all_cpu_percent=12.3, all_memory_total=200,
                                                                 all_memory_used=50, all_disk_total=0)))
    u = telemetry.utilisation
    assert (u.cpu_percent, u.cpu_source) == (12.3, "cml")
    assert u.memory_percent == 25.0
    assert u.disk_percent is None  # a zero total is unknown, not 0 %
    telemetry, _ = apply(worker, report(cloudwatch=CloudWatchSample(cpu_utilization=70.0),
                                        cml=CmlTelemetrySnapshot()), telemetry)
    assert (telemetry.utilisation.cpu_percent, telemetry.utilisation.cpu_source) == (70.0, "cloudwatch")


@pytest.mark.parametrize(("sent", "expected"), [
    (report(cml_unreachable="CmlUnreachableError: timeout"), HealthStatus.UNREACHABLE),
    (report(ec2=Ec2Checks(system_status="impaired")), HealthStatus.CRITICAL),
    (metrics(health_valid=True, controller_valid=False), HealthStatus.CRITICAL),
    (metrics(computes={"c1": CmlComputeNode(id="c1", valid=True, admission_state="BLOCKED")}), HealthStatus.DEGRADED),
    (metrics(all_memory_total=100, all_memory_used=95), HealthStatus.DEGRADED),
    (metrics(health_valid=True, computes={"c1": CmlComputeNode(id="c1", valid=True, admission_state="READY")}),
     HealthStatus.HEALTHY),
])
def test_health_classification(sent: WorkerMetricsReport, expected: HealthStatus) -> None:
    worker = make()
    telemetry, _ = apply(worker, sent)
    assert worker.health_status is expected
    assert (telemetry.health_reasons == []) is (expected is HealthStatus.HEALTHY)


def test_alert_fires_on_crossing_not_on_every_cycle() -> None:
    worker = make()
    hot, cool = metrics(all_cpu_percent=95.0), metrics(all_cpu_percent=10.0)
    settings = MonitoringSettings(cpu_threshold=90)
    assert "worker.alert.raised" in types(apply(worker, hot, monitoring=settings)[1])
    assert "worker.alert.raised" not in types(apply(worker, hot, monitoring=settings)[1])
    apply(worker, cool, monitoring=settings)
    assert "worker.alert.raised" in types(apply(worker, hot, monitoring=settings)[1])
    assert len(worker.alerts) == 2


def test_a_report_that_changes_nothing_the_worker_decides_from_leaves_the_worker_as_it_was() -> None:
    """Telemetry is stored apart: a steady worker's document is not rewritten every cycle."""
    worker = make()
    telemetry, _ = apply(worker, metrics(all_cpu_percent=20.0, running_nodes=2, ready=True))
    before = worker.model_dump()
    later = NOW + timedelta(minutes=1)
    telemetry, events = apply(worker, metrics(all_cpu_percent=35.0, running_nodes=3, ready=True).model_copy(
        update={"collected_at": later}), telemetry)
    assert worker.model_dump() == before
    assert types(events) == ["worker.metrics.updated"]
    assert (telemetry.utilisation.cpu_percent, telemetry.running_nodes, telemetry.collected_at) == (35.0, 3, later)


def test_licence_from_cml_report_and_evaluation_mode() -> None:
    worker = make()
    apply(worker, metrics(license=CmlLicenseInfo(registration_status="COMPLETED", node_limit=520,
                                                 product_license="CML_Enterprise")))
    assert worker.license.status is LicenseStatus.REGISTERED
    assert (worker.license.node_limit, worker.license.product) == (520, "CML_Enterprise")
    other = make()
    apply(other, metrics(license=CmlLicenseInfo(registration_status="NOT_REGISTERED",
                                                authorization_status="EVAL_MODE")))
    assert other.license.status is LicenseStatus.EVALUATION


def _idle_cycle(worker: Worker, previous: WorkerTelemetry | None, at: datetime, idle: IdleSettings,
                running_nodes: int = 0) -> tuple[WorkerTelemetry, list[DomainEvent]]:
    return apply(worker, metrics(running_nodes=running_nodes).model_copy(update={"collected_at": at}), previous,
                 idle=idle)


def test_idle_worker_is_auto_paused_after_the_threshold_only() -> None:
    worker = make()  # running since NOW (when it was discovered)
    idle = IdleSettings(threshold_minutes=30, snooze_minutes_after_resume=60)
    telemetry, events = _idle_cycle(worker, None, NOW + timedelta(minutes=10), idle)
    assert "worker.paused" not in types(events)
    assert telemetry.idle.idle_since == NOW
    assert telemetry.idle.verdict == "idle for 10 min (threshold 30 min), below the threshold"
    telemetry, events = _idle_cycle(worker, telemetry, NOW + timedelta(minutes=35), idle)
    assert "worker.paused" in types(events)
    assert telemetry.idle.verdict == "idle for 35 min (threshold 30 min)"
    assert worker.desired_status is DesiredStatus.STOPPED
    assert worker.activity.pause_reason == "idle_timeout"
    _, events = _idle_cycle(worker, telemetry, NOW + timedelta(minutes=36), idle)
    assert "worker.paused" not in types(events)  # already requested


def test_running_nodes_count_as_activity() -> None:
    worker = make()
    idle = IdleSettings(threshold_minutes=1)
    telemetry, _ = _idle_cycle(worker, None, NOW + timedelta(minutes=50), idle, running_nodes=3)
    assert telemetry.idle.idle_since is None
    assert telemetry.last_activity_at == NOW + timedelta(minutes=50)
    telemetry, events = _idle_cycle(worker, telemetry, NOW + timedelta(minutes=50, seconds=30), idle)
    assert telemetry.idle.idle_since == NOW + timedelta(minutes=50)  # idle from the last activity, not the start
    assert "worker.paused" not in types(events)


def test_a_session_keeps_its_worker_from_being_paused() -> None:
    worker = make()
    worker.capacity.reservations["s1"] = Reservation()
    idle = IdleSettings(threshold_minutes=1)
    telemetry, events = _idle_cycle(worker, None, NOW + timedelta(hours=2), idle)
    assert "worker.paused" not in types(events)
    assert telemetry.idle.verdict == "holds 1 lablet session(s)"


def test_no_auto_pause_in_the_snooze_window_after_a_resume() -> None:
    worker = make()
    idle = IdleSettings(threshold_minutes=5, snooze_minutes_after_resume=60)
    worker.request_desired_status(DesiredStatus.STOPPED, NOW, "op", "manual")
    assert "worker.resumed" in types(worker.request_desired_status(DesiredStatus.RUNNING, NOW, "op"))
    telemetry, events = _idle_cycle(worker, None, NOW + timedelta(minutes=30), idle)
    assert "worker.paused" not in types(events)
    assert telemetry.idle.eligible_for_auto_pause is False
    assert "worker.paused" in types(_idle_cycle(worker, telemetry, NOW + timedelta(minutes=61), idle)[1])


@pytest.mark.parametrize("disable", ["global", "worker", "not-running"])
def test_no_auto_pause_when_disabled_or_not_running(disable: str) -> None:
    worker = make("stopped" if disable == "not-running" else "running")
    idle = IdleSettings(threshold_minutes=1, enabled=disable != "global")
    if disable == "worker":
        worker.set_idle_detection(False, NOW, "op")
    _, events = _idle_cycle(worker, None, NOW + timedelta(hours=2), idle)
    assert "worker.paused" not in types(events)
    assert worker.desired_status is None


def test_desired_status_is_idempotent_and_terminated_is_final() -> None:
    worker = make()
    assert types(worker.request_desired_status(DesiredStatus.STOPPED, NOW, "op")) == [
        "worker.desired_status.changed", "worker.paused"]
    assert worker.request_desired_status(DesiredStatus.STOPPED, NOW, "op") == []
    worker.observe_ec2_state("terminated", NOW, None, "t")
    with pytest.raises(ConflictError):
        worker.request_desired_status(DesiredStatus.RUNNING, NOW, "op")


@pytest.mark.parametrize(("status", "service", "licence", "sessions", "phase"), [
    ("pending", "unavailable", "unregistered", 0, "STARTING"),
    ("running", "unavailable", "unregistered", 0, "STARTING"),
    ("running", "available", "unregistered", 0, "READY_UNLICENSED"),
    ("running", "available", "registering", 0, "LICENSING"),
    ("running", "available", "registered", 0, "READY"),
    ("running", "available", "registered", 2, "ACTIVE"),
    ("stopping", "unavailable", "registered", 0, "STOPPING"),
    ("shutting-down", "unavailable", "registered", 0, "TERMINATING_EC2"),
])
def test_lifecycle_phase_view(status: str, service: str, licence: str, sessions: int, phase: str) -> None:
    worker = make(status)
    worker.service_status = ServiceStatus(service)
    worker.license.status = LicenseStatus(licence)
    worker.capacity.reservations = {f"s{n}": Reservation() for n in range(sessions)}
    assert worker.lifecycle_phase == phase
    assert worker.to_summary().phase == phase


def test_a_requested_worker_adopts_its_instance_once() -> None:
    template = WorkerTemplate(name="metal", capacity=Resources(cpu_cores=48, memory_gb=192, storage_gb=500,
                                                               max_nodes=200))
    worker, events = Worker.requested(template, "us-east-1", "w1", "abc", NOW, "op")
    assert types(events) == ["worker.created"]
    assert (worker.status, worker.desired_status, worker.aws_instance_id) == (WorkerStatus.PENDING,
                                                                               DesiredStatus.RUNNING, None)
    found = DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1", state="pending")
    assert worker.attach_instance(found, NOW, "wc")
    assert worker.aws_instance_id == "i-0123456789abcdef0"
    assert worker.attach_instance(found, NOW, "wc") == []  # the same instance again: nothing to do
    other = DiscoveredInstance(aws_instance_id="i-0fedcba9876543210", aws_region="us-east-1", state="pending")
    with pytest.raises(ConflictError):
        worker.attach_instance(other, NOW, "wc")


def test_an_ec2_state_seen_before_the_last_status_change_is_ignored() -> None:
    """A metrics run reads EC2 at its start and reports up to a cycle later; meanwhile the reconciler may have
    seen the instance stop. The older observation must not bring the worker back to running."""
    worker = make()
    run_started = NOW + timedelta(seconds=10)
    worker.observe_ec2_state("stopped", NOW + timedelta(seconds=20), "EC2 reports stopped", "reconciler")
    assert worker.status_changed_at == NOW + timedelta(seconds=20)
    stale = report(run_started, ec2=Ec2Checks(state="running"))
    assert "worker.status.updated" not in types(apply(worker, stale, now=NOW + timedelta(seconds=25))[1])
    assert worker.status is WorkerStatus.STOPPED
    assert worker.ec2_state == "stopped"
    fresh = report(NOW + timedelta(seconds=30), ec2=Ec2Checks(state="running"))
    assert "worker.status.updated" in types(apply(worker, fresh, now=NOW + timedelta(seconds=35))[1])
    assert worker.status is WorkerStatus.RUNNING


def test_a_worker_of_a_pool_is_left_to_its_pool() -> None:
    """Idle auto-pause would stop it and the pool would launch another in its place: the pool scales it."""
    worker = make()
    worker.pool_id = "p1"
    telemetry, events = _idle_cycle(worker, None, NOW + timedelta(hours=2), IdleSettings(threshold_minutes=1))
    assert "worker.paused" not in types(events)
    assert worker.desired_status is not DesiredStatus.STOPPED
    assert telemetry.idle.verdict == "a worker of pool p1: its pool decides when it stops"
