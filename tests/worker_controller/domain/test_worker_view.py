"""Pure decisions of the worker-controller: which EC2 call moves an instance toward the desired status."""

from __future__ import annotations

import pytest

from lcm_core.domain.enums import DesiredStatus
from worker_controller.domain.worker_view import Ec2Action, WorkerView, action_toward


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
