"""A worker's failed launches (`worker_launch`), without I/O: counted once each, kept on the worker and its row,
cleared with the history saying how many there were when the instance is attached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.system_settings import WorkerTemplate
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_launch import LAUNCH_CLOCK_TOLERANCE
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.worker_launch import LAUNCH_ERROR_MAX_LENGTH, LaunchFailureReport
from lcm_core.domain.workers import Resources
from lcm_core.errors import InvalidError

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
NO_AMI = "no AMI matches 'CML-2.9.*' in eu-west-1"
INSTANCE = DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="eu-west-1", state="pending")


def requested() -> Worker:
    template = WorkerTemplate(name="metal", capacity=Resources(cpu_cores=48, memory_gb=192, storage_gb=500,
                                                               max_nodes=200))
    worker, _ = Worker.requested(template, "eu-west-1", "ccna-pool-000", "w1", NOW, "pool p1", pool_id="p1")
    return worker


def failed(after: timedelta, error: str = NO_AMI) -> LaunchFailureReport:
    return LaunchFailureReport(error=error, observed_at=NOW + after)


def test_each_failed_attempt_is_counted_once_with_the_last_error() -> None:
    worker = requested()
    events = worker.record_launch_failure(failed(timedelta(seconds=1)), NOW, "wc")
    assert [e.type for e in events] == ["worker.launch.failed"]
    assert events[0].data["attempts"] == 1
    assert events[0].data["error"] == NO_AMI
    assert worker.record_launch_failure(failed(timedelta(seconds=1)), NOW, "wc") == []  # the same one again
    assert worker.record_launch_failure(failed(timedelta(seconds=0)), NOW, "wc") == []  # an older one
    capacity = "InsufficientInstanceCapacity: no m5zn.metal capacity in eu-west-1a"
    events = worker.record_launch_failure(failed(timedelta(seconds=5), capacity), NOW, "wc")
    failure = worker.launch_failure
    assert failure is not None
    assert (failure.attempts, failure.error) == (2, capacity)
    assert (failure.since, failure.last_at) == (NOW + timedelta(seconds=1), NOW + timedelta(seconds=5))
    assert events[0].data["attempts"] == 2
    assert worker.to_summary().launch_failure == failure
    # The run of failures is one history entry, not one per attempt.
    assert [(h.field, h.to) for h in worker.state_history if h.field == "launch_failure"] == [
        ("launch_failure", "failing")]


def test_attaching_the_instance_clears_the_failure_and_later_reports_are_ignored() -> None:
    worker = requested()
    for second in (1, 2, 3):
        worker.record_launch_failure(failed(timedelta(seconds=second)), NOW, "wc")
    worker.attach_instance(INSTANCE, NOW + timedelta(seconds=10), "wc")
    assert worker.launch_failure is None
    assert worker.to_summary().launch_failure is None
    cleared = [h for h in worker.state_history if h.field == "launch_failure"][-1]
    assert (cleared.from_, cleared.to, cleared.reason) == ("failing", "", "launched after 3 failed attempt(s)")
    assert worker.record_launch_failure(failed(timedelta(seconds=20)), NOW, "wc") == []  # it has its instance
    assert worker.launch_failure is None


def test_an_attempt_ahead_of_the_clock_is_refused_and_an_offset_is_kept_in_utc() -> None:
    worker = requested()
    with pytest.raises(InvalidError):
        worker.record_launch_failure(failed(LAUNCH_CLOCK_TOLERANCE + timedelta(seconds=1)), NOW, "wc")
    assert worker.launch_failure is None
    report = LaunchFailureReport.model_validate({"error": NO_AMI, "observed_at": "2026-12-05T13:00:01+01:00"})
    assert report.observed_at == NOW + timedelta(seconds=1)
    assert report.observed_at.tzinfo is UTC
    assert len(worker.record_launch_failure(report, NOW, "wc")) == 1


def test_a_terminated_worker_counts_no_failure() -> None:
    worker = requested()
    worker.status = WorkerStatus.TERMINATED
    assert worker.record_launch_failure(failed(timedelta(seconds=1)), NOW, "wc") == []
    assert worker.launch_failure is None


@pytest.mark.parametrize("body", [
    {"error": "", "observed_at": NOW.isoformat()},
    {"error": "x" * (LAUNCH_ERROR_MAX_LENGTH + 1), "observed_at": NOW.isoformat()},
    {"error": NO_AMI},
    {"error": NO_AMI, "observed_at": 1764936000},
    {"error": NO_AMI, "observed_at": NOW.isoformat(), "attempts": 99},
    {"error": "\x00bad", "observed_at": NOW.isoformat()},
    {"error": NO_AMI, "observed_at": "2026-12-05T12:00:00"},
    {"error": NO_AMI, "observed_at": "9999-12-31T23:59:59-12:00"},
])
def test_a_report_is_bounded_and_strict(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LaunchFailureReport.model_validate(body)
