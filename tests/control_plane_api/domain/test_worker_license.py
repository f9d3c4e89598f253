"""The Worker aggregate's licence rules, without I/O: progress reports and the node limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane_api.domain.reports import DiscoveredInstance, LicenseProgress, LicenseReport
from control_plane_api.domain.worker import Worker
from lcm_core.domain.enums import LicenseStatus

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
                               details=LicenseReport(registration_status="IN_PROGRESS", authorization_status="EVAL"))
    events = [e for n in range(322)
              for e in worker.apply_license_progress(progress, NOW + timedelta(seconds=n + 1), "wc")]
    assert [e.type for e in events] == ["worker.license.updated"]
    assert events[0].data["changed"] == ["authorization_status", "registration_status"]
    assert worker.license.updated_at == NOW + timedelta(seconds=1)  # the last change, not the last report
    done = LicenseProgress(status=LicenseStatus.REGISTERED, finished=True,
                           details=LicenseReport(registration_status="COMPLETED", authorization_status="AUTHORIZED"))
    finished = worker.apply_license_progress(done, NOW + timedelta(seconds=400), "wc")
    assert [e.data["changed"] for e in finished] == [
        ["authorization_status", "pending_action", "registration_status", "status"]]
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
