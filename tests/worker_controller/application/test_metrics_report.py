"""How one worker's sources become its report (`WorkerMetricsReport`, the contract both sides import)."""

from __future__ import annotations

from datetime import UTC, datetime

from lcm_core.cml import CmlTelemetrySnapshot, CmlUnreachableError
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks, MetricsBatch, WorkerMetricsReport
from worker_controller.application.metrics import build_report
from worker_controller.domain.worker_view import WorkerView

NOW = datetime(2026, 11, 23, tzinfo=UTC)
WORKER = WorkerView(id="w1", aws_region="us-east-1", aws_instance_id="i-0123456789abcdef0")


def _over_the_wire(report: WorkerMetricsReport) -> WorkerMetricsReport:
    """What the control plane validates: the batch body the gateway sends, read back."""
    body = MetricsBatch(reports=[report]).model_dump(mode="json", exclude_none=True)
    return MetricsBatch.model_validate(body).reports[0]


def test_missing_sources_are_left_out_not_zeroed() -> None:
    report = _over_the_wire(build_report(WORKER, NOW, None, None, None))
    assert report == WorkerMetricsReport(worker_id="w1", collected_at=NOW)


def test_unreachable_cml_is_reported_as_such() -> None:
    error = CmlUnreachableError("connect timeout", host="https://10.0.0.5")
    report = _over_the_wire(build_report(WORKER, NOW, Ec2Checks(state="running", system_status="ok",
                                                                instance_status="ok"),
                                         CloudWatchSample(cpu_utilization=12.5), error))
    assert report.cml is None
    assert "connect timeout" in (report.cml_unreachable or "")
    assert report.ec2 is not None
    assert report.ec2.state == "running"
    assert report.cloudwatch is not None
    assert report.cloudwatch.cpu_utilization == 12.5


def test_the_snapshot_goes_as_collected_with_its_failed_sources_named() -> None:
    snapshot = CmlTelemetrySnapshot(host="https://10.0.0.5", version="2.9.0", ready=True, labs_count=1,
                                    errors={"system_health": "CmlUnreachableError: 504",
                                            "system_stats": "malformed answer: none of its values could be read"})
    report = _over_the_wire(build_report(WORKER, NOW, None, None, snapshot))
    assert report.cml == snapshot
    assert report.cml_unreachable is None
