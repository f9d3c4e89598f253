"""How one worker's sources become its `metrics:batch` item."""

from __future__ import annotations

from datetime import UTC, datetime

from control_plane_api.domain.reports import MetricsReport
from lcm_core.cml import CmlTelemetrySnapshot, CmlUnreachableError
from worker_controller.application.metrics import build_report
from worker_controller.domain.worker_view import WorkerView
from worker_controller.infrastructure.aws import CloudWatchSample, StatusChecks

NOW = datetime(2026, 11, 23, tzinfo=UTC)
WORKER = WorkerView(id="w1", aws_region="us-east-1", aws_instance_id="i-0123456789abcdef0")


def test_missing_sources_are_left_out_not_zeroed() -> None:
    item = build_report(WORKER, NOW, None, None, None)
    assert item == {"worker_id": "w1", "metrics": {"collected_at": NOW.isoformat()}}


def test_unreachable_cml_is_reported_as_such_and_validates_against_the_cpa_model() -> None:
    error = CmlUnreachableError("connect timeout", host="https://10.0.0.5")
    item = build_report(WORKER, NOW, StatusChecks("running", "ok", "ok"), CloudWatchSample(cpu_utilization=12.5),
                        error)
    report = MetricsReport.model_validate(item["metrics"])
    assert report.cml is not None
    assert report.cml.reachable is False
    assert "connect timeout" in (report.cml.error or "")
    assert report.ec2 is not None
    assert report.ec2.state == "running"
    assert report.cloudwatch is not None
    assert report.cloudwatch.cpu_utilization == 12.5


def test_failed_cml_sources_are_named_so_that_the_control_plane_keeps_them_stale() -> None:
    snapshot = CmlTelemetrySnapshot(host="https://10.0.0.5", version="2.9.0", ready=True, labs_count=1,
                                    errors={"system_health": "CmlUnreachableError: 504",
                                            "system_stats": "malformed answer: none of its values could be read"})
    report = MetricsReport.model_validate(build_report(WORKER, NOW, None, None, snapshot)["metrics"])
    assert report.cml is not None
    assert report.cml.reachable is True
    assert report.cml.failed == {"system_health": "CmlUnreachableError: 504",
                                 "system_stats": "malformed answer: none of its values could be read"}
    assert (report.cml.system_info, report.cml.system_health) == (None, None)  # left out, not emptied
    assert report.cml.labs_count == 1
