"""The Worker aggregate's rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.reports import (
    CloudWatchReport,
    CmlReport,
    DiscoveredInstance,
    Ec2Report,
    LicenseReport,
    MetricsReport,
)
from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings, WorkerTemplate
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_state import STATE_HISTORY_LIMIT, CmlSystemHealth, CmlSystemInfo
from lcm_core.cml import SYSTEM_INFO_KEYS
from lcm_core.domain.enums import DesiredStatus, HealthStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.errors import ConflictError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make(state: str = "running") -> Worker:
    worker, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                     instance_type="m5zn.metal", state=state), NOW, "test")
    return worker


def metrics(**cml: object) -> MetricsReport:
    return MetricsReport(collected_at=NOW, cml=CmlReport(**cml))


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
    report = MetricsReport(collected_at=NOW, cloudwatch=CloudWatchReport(cpu_utilization=70.0),
                           cml=CmlReport(system_info=CmlSystemInfo(all_cpu_percent=12.3, all_memory_total=200,
                                                                   all_memory_used=50, all_disk_total=0)))
    worker.apply_metrics(report, MonitoringSettings(), NOW, "test")
    assert (worker.telemetry.cpu_percent, worker.telemetry.cpu_source) == (12.3, "cml")
    assert worker.telemetry.memory_percent == 25.0
    assert worker.telemetry.disk_percent is None  # a zero total is unknown, not 0 %
    worker.apply_metrics(MetricsReport(collected_at=NOW, cloudwatch=CloudWatchReport(cpu_utilization=70.0),
                                       cml=CmlReport(system_info=CmlSystemInfo())), MonitoringSettings(), NOW, "t")
    assert (worker.telemetry.cpu_percent, worker.telemetry.cpu_source) == (70.0, "cloudwatch")


@pytest.mark.parametrize(("report", "expected"), [
    (metrics(reachable=False), HealthStatus.UNREACHABLE),
    (MetricsReport(collected_at=NOW, ec2=Ec2Report(system_status="impaired")), HealthStatus.CRITICAL),
    (metrics(system_health=CmlSystemHealth(valid=True, controller={"valid": False})), HealthStatus.CRITICAL),
    (metrics(system_health=CmlSystemHealth(computes={"c1": {"valid": True, "admission_state": "BLOCKED"}})),
     HealthStatus.DEGRADED),
    (metrics(system_info=CmlSystemInfo(all_memory_total=100, all_memory_used=95)), HealthStatus.DEGRADED),
    (metrics(system_health=CmlSystemHealth(valid=True, computes={"c1": {"valid": True, "admission_state": "READY"}})),
     HealthStatus.HEALTHY),
])
def test_health_classification(report: MetricsReport, expected: HealthStatus) -> None:
    worker = make()
    worker.apply_metrics(report, MonitoringSettings(), NOW, "test")
    assert worker.health_status is expected
    assert (worker.health_reasons == []) is (expected is HealthStatus.HEALTHY)


def test_alert_fires_on_crossing_not_on_every_cycle() -> None:
    worker = make()
    hot = metrics(system_info=CmlSystemInfo(all_cpu_percent=95.0))
    cool = metrics(system_info=CmlSystemInfo(all_cpu_percent=10.0))
    settings = MonitoringSettings(cpu_threshold=90)
    assert "worker.alert.raised" in types(worker.apply_metrics(hot, settings, NOW, "t"))
    assert "worker.alert.raised" not in types(worker.apply_metrics(hot, settings, NOW, "t"))
    worker.apply_metrics(cool, settings, NOW, "t")
    assert "worker.alert.raised" in types(worker.apply_metrics(hot, settings, NOW, "t"))
    assert len(worker.alerts) == 2


def test_licence_from_cml_report_and_evaluation_mode() -> None:
    worker = make()
    worker.apply_metrics(metrics(license=LicenseReport(registration_status="COMPLETED", node_limit=520,
                                                       product="CML_Enterprise")), MonitoringSettings(), NOW, "t")
    assert worker.license.status is LicenseStatus.REGISTERED
    assert worker.license.node_limit == 520
    other = make()
    evaluation = LicenseReport(registration_status="NOT_REGISTERED", authorization_status="EVAL_MODE")
    other.apply_metrics(metrics(license=evaluation), MonitoringSettings(), NOW, "t")
    assert other.license.status is LicenseStatus.EVALUATION


def test_idle_worker_is_auto_paused_after_the_threshold_only() -> None:
    worker = make()
    idle = IdleSettings(threshold_minutes=30, snooze_minutes_after_resume=60)
    worker.activity.last_activity_at = NOW - timedelta(minutes=10)
    assert worker.detect_idle(idle, NOW, "t") == []
    assert worker.activity.idle_since == NOW - timedelta(minutes=10)
    assert worker.activity.idle_verdict == "idle for 10 min (threshold 30 min), below the threshold"
    events = worker.detect_idle(idle, NOW + timedelta(minutes=25, seconds=30), "t")
    assert "worker.paused" in types(events)
    assert worker.activity.idle_verdict == "idle for 35 min (threshold 30 min)"
    assert worker.desired_status is DesiredStatus.STOPPED
    assert worker.activity.pause_reason == "idle_timeout"
    assert worker.detect_idle(idle, NOW + timedelta(minutes=26), "t") == []  # already requested


def test_running_nodes_count_as_activity() -> None:
    worker = make()
    worker.telemetry.cml.system_info.running_nodes = 3
    worker.detect_idle(IdleSettings(threshold_minutes=1), NOW, "t")
    assert worker.activity.idle_since is None
    assert worker.activity.last_activity_at == NOW


def test_no_auto_pause_in_the_snooze_window_after_a_resume() -> None:
    worker = make()
    idle = IdleSettings(threshold_minutes=5, snooze_minutes_after_resume=60)
    worker.request_desired_status(DesiredStatus.STOPPED, NOW, "op", "manual")
    assert "worker.resumed" in types(worker.request_desired_status(DesiredStatus.RUNNING, NOW, "op"))
    assert worker.detect_idle(idle, NOW + timedelta(minutes=30), "t") == []
    assert worker.activity.eligible_for_auto_pause is False
    assert "worker.paused" in types(worker.detect_idle(idle, NOW + timedelta(minutes=61), "t"))


@pytest.mark.parametrize("disable", ["global", "worker", "not-running"])
def test_no_auto_pause_when_disabled_or_not_running(disable: str) -> None:
    worker = make("stopped" if disable == "not-running" else "running")
    idle = IdleSettings(threshold_minutes=1, enabled=disable != "global")
    if disable == "worker":
        worker.set_idle_detection(False, NOW, "op")
    worker.activity.last_activity_at = NOW - timedelta(hours=2)
    assert worker.detect_idle(idle, NOW, "t") == []
    assert worker.desired_status is None


def test_desired_status_is_idempotent_and_terminated_is_final() -> None:
    worker = make()
    assert types(worker.request_desired_status(DesiredStatus.STOPPED, NOW, "op")) == [
        "worker.desired_status.changed", "worker.paused"]
    assert worker.request_desired_status(DesiredStatus.STOPPED, NOW, "op") == []
    worker.observe_ec2_state("terminated", NOW, None, "t")
    with pytest.raises(ConflictError):
        worker.request_desired_status(DesiredStatus.RUNNING, NOW, "op")


@pytest.mark.parametrize(("status", "service", "licence", "labs", "phase"), [
    ("pending", "unavailable", "unregistered", 0, "STARTING"),
    ("running", "unavailable", "unregistered", 0, "STARTING"),
    ("running", "available", "unregistered", 0, "READY_UNLICENSED"),
    ("running", "available", "registering", 0, "LICENSING"),
    ("running", "available", "registered", 0, "READY"),
    ("running", "available", "registered", 2, "ACTIVE"),
    ("stopping", "unavailable", "registered", 0, "STOPPING"),
    ("shutting-down", "unavailable", "registered", 0, "TERMINATING_EC2"),
])
def test_lifecycle_phase_view(status: str, service: str, licence: str, labs: int, phase: str) -> None:
    worker = make(status)
    worker.service_status = ServiceStatus(service)
    worker.license.status = LicenseStatus(licence)
    worker.telemetry.labs_count = labs
    assert worker.lifecycle_phase == phase


def test_system_info_has_exactly_the_16_keys_the_controllers_report() -> None:
    assert tuple(CmlSystemInfo.model_fields) == SYSTEM_INFO_KEYS


def test_a_requested_worker_adopts_its_instance_once() -> None:
    template = WorkerTemplate(name="metal", capacity={"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500,
                                                      "max_nodes": 200})
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
    stale = MetricsReport(collected_at=run_started, ec2=Ec2Report(state="running"))
    assert "worker.status.updated" not in types(worker.apply_metrics(stale, MonitoringSettings(),
                                                                     NOW + timedelta(seconds=25), "metrics"))
    assert worker.status is WorkerStatus.STOPPED
    assert worker.telemetry.ec2.state == "stopped"
    fresh = MetricsReport(collected_at=NOW + timedelta(seconds=30), ec2=Ec2Report(state="running"))
    assert "worker.status.updated" in types(worker.apply_metrics(fresh, MonitoringSettings(),
                                                                 NOW + timedelta(seconds=35), "metrics"))
    assert worker.status is WorkerStatus.RUNNING
