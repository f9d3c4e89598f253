"""A worker's lead clock, without I/O: started by a launch from a template and by a resume of a stopped
instance, measured the first time the worker serves, and only then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane_api.domain.lead_times import LeadKind
from control_plane_api.domain.reports import DiscoveredInstance, StatusReport
from control_plane_api.domain.system_settings import WorkerTemplate
from control_plane_api.domain.worker import Worker
from lcm_core.domain.enums import DesiredStatus, HealthStatus, LicenseStatus, ServiceStatus, WorkerStatus

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
TEMPLATE = WorkerTemplate(name="metal")


def serving(worker: Worker, at: datetime) -> None:
    """Running, CML available, licensed and healthy: what `pool_capacity.serving` asks."""
    worker.apply_status_report(StatusReport(ec2_state="running", service_status=ServiceStatus.AVAILABLE), at, "test")
    worker.license.status, worker.license.pending_action = LicenseStatus.REGISTERED, None
    worker.health_status = HealthStatus.HEALTHY


def test_a_launch_is_timed_until_the_worker_first_serves() -> None:
    worker, _ = Worker.requested(TEMPLATE, "us-east-1", "w", "w1", NOW, "pool p")
    assert worker.lead_clock is not None
    assert (worker.lead_clock.kind, worker.lead_clock.since) == (LeadKind.PROVISION, NOW)
    worker.apply_status_report(StatusReport(ec2_state="running", service_status=ServiceStatus.AVAILABLE),
                               NOW + timedelta(minutes=5), "test")
    assert worker.lead_sample(NOW + timedelta(minutes=5)) is None  # unlicensed, not measured: not serving yet
    serving(worker, NOW + timedelta(minutes=11))
    sample = worker.lead_sample(NOW + timedelta(minutes=12))
    assert sample is not None
    assert (sample.template_name, sample.kind, sample.worker_id, sample.seconds) == (
        "metal", LeadKind.PROVISION, "w1", 720.0)
    assert worker.stop_lead_clock(NOW + timedelta(seconds=1)) == []  # another clock's: this one runs on
    assert worker.lead_clock is not None
    worker.stop_lead_clock(sample.started_at)
    assert (worker.lead_clock, worker.lead_sample(NOW + timedelta(minutes=20))) == (None, None)


def test_a_resume_is_timed_only_when_the_instance_is_down() -> None:
    worker, _ = Worker.requested(TEMPLATE, "us-east-1", "w", "w1", NOW, "pool p")
    serving(worker, NOW)
    worker.lead_clock = None
    worker.request_desired_status(DesiredStatus.STOPPED, NOW, "pool p")
    worker.request_desired_status(DesiredStatus.RUNNING, NOW + timedelta(minutes=1), "pool p")
    assert worker.lead_clock is None  # never went down: a resume of it says nothing of how long one takes

    worker.request_desired_status(DesiredStatus.STOPPED, NOW + timedelta(minutes=2), "pool p")
    worker.observe_ec2_state("stopped", NOW + timedelta(minutes=3), None, "test")
    assert worker.status is WorkerStatus.STOPPED
    worker.request_desired_status(DesiredStatus.RUNNING, NOW + timedelta(minutes=10), "pool p")
    assert worker.lead_clock is not None
    assert (worker.lead_clock.kind, worker.lead_clock.since) == (LeadKind.RESUME, NOW + timedelta(minutes=10))
    serving(worker, NOW + timedelta(minutes=14))
    sample = worker.lead_sample(NOW + timedelta(minutes=14))
    assert sample is not None
    assert (sample.kind, sample.seconds) == (LeadKind.RESUME, 240.0)


def test_a_discovered_worker_is_not_timed() -> None:
    worker, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                     instance_type="m5zn.metal", state="stopped"), NOW, "test")
    worker.request_desired_status(DesiredStatus.RUNNING, NOW, "operator")
    assert worker.lead_clock is None
    serving(worker, NOW + timedelta(minutes=5))
    assert worker.lead_sample(NOW + timedelta(minutes=5)) is None
