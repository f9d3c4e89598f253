"""Launching a worker's instance against a real moto server: a reconcile that crashed after RunInstances (its
report of the instance never reached the control plane) is retried without a second instance. The pool's
launches are keyed the same way (docs/pools.md): one worker per launch number, one instance per worker.

Moto does not honour RunInstances' ClientToken, so what is proved here is the read before every launch (the
worker's id tag); against EC2 the token (the worker's id) covers the call that failed on its way back too."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import boto3
import pytest

from lcm_core.domain.worker_launch import LAUNCH_ERROR_MAX_LENGTH, LaunchFailureReport
from lcm_core.domain.workers import WorkerView
from lcm_core.errors import UnavailableError
from lcm_core.leader.fence import AlwaysLeading
from lcm_core.logging import register_secret
from lcm_core.testing.devstack.aws_seed import register_ami
from worker_controller.application.provisioning import WORKER_ID_TAG, Provisioner
from worker_controller.infrastructure.aws import AwsFleet

REGION = "eu-north-1"


def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


class CrashingOnce:
    """The control plane's side of provisioning; its first report of the instance is lost (the controller
    crashed, or the call failed on its way), the next one is stored."""

    def __init__(self, template: dict[str, Any]) -> None:
        self._template = template
        self.attached: list[str] = []
        self.lost = 0

    async def template(self, name: str, /) -> dict[str, Any]:
        return self._template

    async def provisioned(self, worker_id: str, instance: dict[str, Any], /) -> WorkerView:
        if not self.lost:
            self.lost += 1
            raise UnavailableError("the control plane did not answer")
        self.attached.append(instance["aws_instance_id"])
        return WorkerView(id=worker_id, aws_region=REGION, aws_instance_id=instance["aws_instance_id"])

    async def bulk_import(self, instances: Any, source: str, /) -> Any:
        raise AssertionError(f"no duplicate instance may be launched: {instances}")

    async def launch_failed(self, worker_id: str, report: dict[str, Any], /) -> WorkerView:
        raise AssertionError(f"the launch did not fail: {report}")


class RecordingFailures:
    """The control plane's side of provisioning, keeping the launch failures reported to it."""

    def __init__(self, template: dict[str, Any]) -> None:
        self._template = template
        self.failures: list[dict[str, Any]] = []
        self.attached: list[str] = []

    async def template(self, name: str, /) -> dict[str, Any]:
        return self._template

    async def provisioned(self, worker_id: str, instance: dict[str, Any], /) -> WorkerView:
        self.attached.append(instance["aws_instance_id"])
        return WorkerView(id=worker_id, aws_region=REGION, aws_instance_id=instance["aws_instance_id"])

    async def bulk_import(self, instances: Any, source: str, /) -> Any:
        raise AssertionError(f"no duplicate instance may be launched: {instances}")

    async def launch_failed(self, worker_id: str, report: dict[str, Any], /) -> WorkerView:
        self.failures.append(report)
        return WorkerView(id=worker_id, aws_region=REGION)


def test_a_launch_retried_after_a_crash_finds_the_instance_it_launched(moto_server) -> None:
    url = f"http://{moto_server.address}"
    tag = uuid.uuid4().hex[:8]
    ec2 = session().client("ec2", region_name=REGION, endpoint_url=url)
    register_ami(ec2, f"CML-2.9.{tag}-build")
    gateway = CrashingOnce({"name": "metal", "ami_name_pattern": f"CML-2.9.{tag}-*", "instance_type": "m5zn.metal"})
    fleet = AwsFleet(endpoint_url=url, max_concurrency=2, session_factory=session)
    worker = WorkerView(id=f"pool-worker-{tag}", name="ccna-pool-000", aws_region=REGION, template_name="metal")
    provisioner = Provisioner(fleet, gateway, AlwaysLeading())

    async def twice() -> WorkerView:
        with pytest.raises(UnavailableError):  # the crash: the instance runs, the control plane does not know it
            await provisioner.provision(worker)
        return await provisioner.provision(worker)

    try:
        attached = asyncio.run(twice())
    finally:
        fleet.close()
    found = ec2.describe_instances(Filters=[{"Name": f"tag:{WORKER_ID_TAG}", "Values": [worker.id]}])
    instances = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
    assert len(instances) == 1, instances
    assert gateway.attached == instances
    assert attached.aws_instance_id == instances[0]
    assert provisioner.launched == 1


def test_a_launch_that_launched_nothing_is_reported_then_retried_once_the_ami_exists(moto_server) -> None:
    """The template's pattern matches no AMI: each attempt raises (the reconcile backs off and retries) and is
    reported with its error; once an AMI matching the pattern is registered, the next attempt launches."""
    url = f"http://{moto_server.address}"
    tag = uuid.uuid4().hex[:8]
    ec2 = session().client("ec2", region_name=REGION, endpoint_url=url)
    pattern = f"CML-2.9.{tag}-*"
    gateway = RecordingFailures({"name": "metal", "ami_name_pattern": pattern, "instance_type": "m5zn.metal"})
    fleet = AwsFleet(endpoint_url=url, max_concurrency=2, session_factory=session)
    worker = WorkerView(id=f"pool-worker-{tag}", name="ccna-pool-000", aws_region=REGION, template_name="metal")
    provisioner = Provisioner(fleet, gateway, AlwaysLeading())

    async def fail_twice_then_launch() -> WorkerView:
        for _ in range(2):
            with pytest.raises(UnavailableError, match="no AMI matches"):
                await provisioner.provision(worker)
        register_ami(ec2, f"CML-2.9.{tag}-build")
        return await provisioner.provision(worker)

    try:
        attached = asyncio.run(fail_twice_then_launch())
    finally:
        fleet.close()
    assert [f["error"] for f in gateway.failures] == [f"no AMI matches '{pattern}' in {REGION}"] * 2
    first, second = (LaunchFailureReport.model_validate(f) for f in gateway.failures)
    assert first.observed_at < second.observed_at
    assert provisioner.failed == 2
    assert provisioner.launched == 1
    assert gateway.attached == [attached.aws_instance_id]


def test_a_reported_launch_error_masks_secrets_and_is_cut_to_its_bound(moto_server) -> None:
    url = f"http://{moto_server.address}"
    secret = f"token-{uuid.uuid4().hex}"
    register_secret(secret)
    pattern = f"CML-{secret}-{'x' * LAUNCH_ERROR_MAX_LENGTH}-*"
    gateway = RecordingFailures({"name": "metal", "ami_name_pattern": pattern, "instance_type": "m5zn.metal"})
    fleet = AwsFleet(endpoint_url=url, max_concurrency=2, session_factory=session)
    worker = WorkerView(id=f"pool-worker-{uuid.uuid4().hex[:8]}", name="w", aws_region=REGION, template_name="metal")

    async def attempt() -> None:
        with pytest.raises(UnavailableError):
            await Provisioner(fleet, gateway, AlwaysLeading()).provision(worker)

    try:
        asyncio.run(attempt())
    finally:
        fleet.close()
    (report,) = gateway.failures
    assert secret not in report["error"]
    assert report["error"].startswith("no AMI matches 'CML-")
    assert len(report["error"]) == LAUNCH_ERROR_MAX_LENGTH
    LaunchFailureReport.model_validate(report)  # what the control plane accepts
