"""The Worker aggregate's licence rules, without I/O: progress reports and the node limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.reports import DiscoveredInstance, LicenseProgress
from control_plane_api.domain.system_settings import IdleSettings, MonitoringSettings
from control_plane_api.domain.worker import Worker
from lcm_core.domain.cml_snapshot import CmlLicenseInfo, CmlTelemetrySnapshot
from lcm_core.domain.enums import LicenseStatus
from lcm_core.domain.workers import UNLICENSED_NODE_LIMIT, WorkerMetricsReport, node_limit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make() -> Worker:
    worker, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                     instance_type="m5zn.metal", state="running"), NOW, "test")
    return worker


def test_identical_progress_reports_give_one_event_and_leave_the_licence_untouched() -> None:
    """A registration polled for 6 s used to produce one `worker.license.updated` per poll (322 of them)."""
    worker = make()
    worker.request_license("register", NOW, "op")
    progress = LicenseProgress(status=LicenseStatus.REGISTERING,
                               details=CmlLicenseInfo(registration_status="IN_PROGRESS", authorization_status="EVAL"))
    events = [e for n in range(322)
              for e in worker.apply_license_progress(progress, NOW + timedelta(seconds=n + 1), "wc")]
    assert [e.type for e in events] == ["worker.license.updated"]
    assert events[0].data["changed"] == ["authorization_status", "registration_status"]
    assert worker.license.updated_at == NOW + timedelta(seconds=1)  # the last change, not the last report
    done = LicenseProgress(status=LicenseStatus.REGISTERED, finished=True,
                           details=CmlLicenseInfo(registration_status="COMPLETED", authorization_status="AUTHORIZED",
                                                 node_limit=520))
    finished = worker.apply_license_progress(done, NOW + timedelta(seconds=400), "wc")
    assert [e.data["changed"] for e in finished] == [
        ["authorization_status", "node_limit", "pending_action", "registration_status", "reported_node_limit",
         "status"]]
    assert worker.apply_license_progress(done, NOW + timedelta(seconds=401), "wc") == []
    assert worker.license.updated_at == NOW + timedelta(seconds=400)


def test_a_repeated_error_is_no_news_but_a_new_one_is() -> None:
    worker = make()
    worker.request_license("register", NOW, "op")
    failed = LicenseProgress(error="smart licensing unreachable")
    assert len(worker.apply_license_progress(failed, NOW, "wc")) == 1
    assert worker.apply_license_progress(failed, NOW, "wc") == []
    other = worker.apply_license_progress(LicenseProgress(error="token expired"), NOW, "wc")
    assert other[0].data["changed"] == ["last_error"]


@pytest.mark.parametrize(("status", "reported", "known", "expected"), [
    (LicenseStatus.REGISTERED, 520, True, 520),
    (LicenseStatus.REGISTERED, None, True, None),  # a registered product CML does not size: not guessed
    (LicenseStatus.UNREGISTERED, None, True, UNLICENSED_NODE_LIMIT),
    (LicenseStatus.EVALUATION, None, True, UNLICENSED_NODE_LIMIT),
    (LicenseStatus.EXPIRED, None, True, UNLICENSED_NODE_LIMIT),
    (LicenseStatus.INVALID, None, True, UNLICENSED_NODE_LIMIT),
    (LicenseStatus.REGISTERING, None, True, UNLICENSED_NODE_LIMIT),  # runs unlicensed until registered
    (LicenseStatus.DEREGISTERING, 520, True, 520),  # still licensed until CML says otherwise
    (LicenseStatus.EVALUATION, 12, True, 12),  # CML's own number wins
    (LicenseStatus.UNREGISTERED, None, False, None),  # CML never told its licensing: nothing claimed
])
def test_node_limit_rule(status: LicenseStatus, reported: int | None, known: bool, expected: int | None) -> None:
    assert UNLICENSED_NODE_LIMIT == 5
    assert node_limit(status, reported, known) == expected


def _licence(worker: Worker, **report: object) -> None:
    sent = WorkerMetricsReport(worker_id=worker.id, collected_at=NOW,
                               cml=CmlTelemetrySnapshot(license=CmlLicenseInfo.model_validate(report)))
    worker.apply_metrics(sent, None, MonitoringSettings(), IdleSettings(), NOW, "metrics")


def test_unlicensed_and_evaluation_workers_show_the_unlicensed_limit() -> None:
    worker = make()
    assert worker.license.node_limit is None  # nothing heard from CML yet
    _licence(worker, registration_status="NOT_REGISTERED", authorization_status="EVAL_MODE")
    assert (worker.license.status, worker.license.node_limit) == (LicenseStatus.EVALUATION, 5)
    _licence(worker, registration_status="COMPLETED", authorization_status="AUTHORIZED", node_limit=520)
    assert (worker.license.status, worker.license.node_limit) == (LicenseStatus.REGISTERED, 520)
    worker.request_license("deregister", NOW, "op")
    assert worker.license.node_limit == 520
    gone = LicenseProgress(status=LicenseStatus.UNREGISTERED, finished=True,
                           details=CmlLicenseInfo(registration_status="NOT_REGISTERED"))
    worker.apply_license_progress(gone, NOW, "wc")
    assert (worker.license.status, worker.license.node_limit) == (LicenseStatus.UNREGISTERED, 5)
    assert worker.license.reported_node_limit is None
