"""Pure decisions of the worker-controller: which EC2 call moves an instance toward the desired status, and
what must happen before an instance may go down."""

from __future__ import annotations

from datetime import datetime

import pytest

from lcm_core.domain.enums import DesiredStatus
from worker_controller.domain.worker_view import (
    Ec2Action,
    ShutdownGate,
    WorkerView,
    action_toward,
    before_shutdown,
)


@pytest.mark.parametrize(("desired", "state", "action"), [
    (None, "running", None),
    (DesiredStatus.RUNNING, "stopped", Ec2Action.START),
    (DesiredStatus.RUNNING, "running", None),
    (DesiredStatus.RUNNING, "stopping", None),  # wait it out, then start
    (DesiredStatus.STOPPED, "running", Ec2Action.STOP),
    (DesiredStatus.STOPPED, "pending", None),
    (DesiredStatus.STOPPED, "stopped", None),
    (DesiredStatus.TERMINATED, "stopped", Ec2Action.TERMINATE),
    (DesiredStatus.TERMINATED, "running", Ec2Action.TERMINATE),
    (DesiredStatus.TERMINATED, "shutting-down", None),
    (DesiredStatus.TERMINATED, "terminated", None),
])
def test_action_toward_desired_status(desired, state, action) -> None:
    assert action_toward(desired, state) is action


def test_cml_url_from_template_prefers_the_private_ip() -> None:
    worker = WorkerView(id="w", aws_region="us-east-1", aws_instance_id="i-0abc", private_ip="10.0.0.5",
                        public_ip="3.3.3.3")
    assert worker.cml_url("https://{ip_address}") == "https://10.0.0.5"
    assert worker.cml_url("http://sim:9/hosts/{instance_id}/") == "http://sim:9/hosts/i-0abc"
    assert WorkerView(id="w", aws_region="r", aws_instance_id="i-1").cml_url("https://{ip_address}") is None


def test_unknown_fields_from_the_control_plane_are_ignored() -> None:
    view = WorkerView.model_validate({"id": "w", "aws_region": "r", "aws_instance_id": "i-1", "status": "running",
                                      "telemetry": {"anything": 1}, "license": {"status": "registered", "x": 2}})
    assert view.license.status == "registered"


def _going_down(licence: str = "unregistered", service: str = "available", sessions: int = 0) -> WorkerView:
    return WorkerView.model_validate({
        "id": "w", "aws_region": "r", "aws_instance_id": "i-1", "status": "running", "service_status": service,
        "license": {"status": licence}, "sessions": sessions, "desired_status": "stopped"})


@pytest.mark.parametrize(("worker", "state", "waited", "gate", "stranded"), [
    (_going_down(sessions=1), "running", 0, ShutdownGate.REFUSE, False),
    (_going_down(licence="registered", sessions=2), "running", 9999, ShutdownGate.REFUSE, False),
    (_going_down(), "running", 0, ShutdownGate.PROCEED, False),
    (_going_down(licence="evaluation"), "running", 0, ShutdownGate.PROCEED, False),
    (_going_down(licence="registered"), "running", 0, ShutdownGate.DEREGISTER, False),
    (_going_down(licence="registering"), "running", 0, ShutdownGate.DEREGISTER, False),
    (_going_down(licence="deregistering"), "running", 30, ShutdownGate.DEREGISTER, False),
    (_going_down(licence="registered", service="starting"), "running", 30, ShutdownGate.WAIT, False),
    (_going_down(licence="registered", service="error"), "running", 600, ShutdownGate.PROCEED, True),
    (_going_down(licence="registered"), "running", 601, ShutdownGate.PROCEED, True),
    (_going_down(licence="registered"), "stopped", 0, ShutdownGate.PROCEED, True),
])
def test_what_must_happen_before_an_instance_goes_down(worker, state, waited, gate, stranded) -> None:
    step = before_shutdown(worker, state, waited, deregister_timeout_seconds=600)
    assert (step.gate, step.licence_stranded) == (gate, stranded), step.reason
    assert step.reason


def test_the_last_change_is_the_later_of_status_and_desired_changes() -> None:
    early, late = "2026-12-01T10:00:00+00:00", "2026-12-01T10:05:00+00:00"
    view = WorkerView.model_validate({"id": "w", "aws_region": "r", "status_changed_at": early,
                                      "desired_changed_at": late})
    assert view.last_change() == datetime.fromisoformat(late)
    only_status = WorkerView.model_validate({"id": "w", "aws_region": "r", "status_changed_at": late})
    assert only_status.last_change() == datetime.fromisoformat(late)
    assert WorkerView(id="w", aws_region="r").last_change() is None
