"""A pool whose worker cannot be launched, against real parts: the CPA (MongoDB-wire, Redis, etcd), moto (AWS),
the CML simulator and the worker-controller, leader-elected through etcd.

The template's AMI pattern matches no image: every launch fails. The worker carries its failed attempts
(`launch_failure`), the pool turns `failed` saying which worker could not be launched, how many times and why,
and launches no other worker meanwhile. Once an AMI matching the pattern is registered, the next attempt
launches the instance: the failure is cleared and the pool recovers (here all the way to ready).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.devstack.aws_seed import register_ami
from tests.fixtures.cml_simulator import CmlSimulator
from tests.fixtures.control_plane import API_KEY, ControlPlaneUnderTest
from tests.fixtures.polling import wait_for
from tests.fixtures.settings import from_environment
from worker_controller.main import build_host as build_worker_controller
from worker_controller.settings import WorkerControllerSettings

REGION = "ap-south-1"
M5ZN = {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200}


@pytest.fixture
def no_ami_yet(control_plane: ControlPlaneUnderTest, moto_server, cml_simulator_clean: CmlSimulator
               ) -> Iterator[dict[str, Any]]:
    """A template whose AMI pattern matches nothing (yet), and the worker-controller running."""
    sim, tag = cml_simulator_clean, uuid.uuid4().hex[:8]
    aws = f"http://{moto_server.address}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=aws, aws_access_key_id="x", aws_secret_access_key="x")
    template, pattern = f"metal-{tag}", f"CML-2.9.{tag}-*"
    with control_plane.client() as http:
        created = http.post("/api/templates", headers=control_plane.admin(), json={
            "name": template, "instance_type": "m5zn.metal", "ami_name_pattern": pattern,
            "regions": {REGION: {}}, "capacity": M5ZN})
        assert created.status_code == 201, created.text
    settings = from_environment(
        WorkerControllerSettings, LCM_ENVIRONMENT="test", ETCD_HOST=control_plane.etcd.host,
        ETCD_PORT=control_plane.etcd.port, ETCD_PREFIX=control_plane.prefix, CONTROL_PLANE_API_URL=control_plane.url,
        CONTROL_PLANE_API_KEY=API_KEY, CONTROLLER_STATUS_REPORT_INTERVAL=1,
        CML_WORKER_URL_TEMPLATE=f"{sim.url}/hosts/{{instance_id}}", CML_WORKER_API_USERNAME=sim.username,
        CML_WORKER_API_PASSWORD=sim.password, CML_WORKER_VERIFY_TLS="false", CONTROLLER_IDENTITY="wc-launch",
        WORKER_CONTROLLER_LEADER_LEASE_TTL=3, WORKER_DISCOVERY_REGIONS=REGION, WORKER_DISCOVERY_AMI_NAME=pattern,
        WORKER_DISCOVERY_INTERVAL=2, METRICS_POLL_INTERVAL=1, WORKER_CONTROLLER_RECONCILE_INTERVAL=1,
        WORKER_AUTOSCALER_INTERVAL=1, WORKER_LAUNCH_FAILURE_LIMIT=3, AWS_ENDPOINT_URL=aws, AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x", CML_LICENSE_TOKEN="U21hcnRMaWNlbnNpbmdUb2tlbg==")
    with serve_in_thread(build_worker_controller(settings).create_app()):
        yield {"ec2": ec2, "template": template, "track": f"track-{tag}", "pattern": pattern,
               "ami_name": f"CML-2.9.{tag}-build"}


def test_a_pool_fails_while_its_worker_cannot_be_launched_and_recovers_once_it_is(control_plane,
                                                                                    no_ami_yet) -> None:
    cp = control_plane
    with cp.client() as http:
        created = http.post("/api/pools", headers=cp.admin(), json={
            "name": "no-ami-pool", "lab_track": no_ami_yet["track"], "template_name": no_ami_yet["template"],
            "regions": [REGION], "scaling": {"policy": "none", "min_workers": 1, "max_workers": 3}})
        assert created.status_code == 201, created.text
    pool_id = created.json()["id"]

    def pool() -> dict[str, Any]:
        answer = httpx.get(f"{cp.url}/api/pools/{pool_id}", headers=cp.viewer())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def worker(worker_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{cp.url}/api/workers/{worker_id}", headers=cp.viewer())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    # 1. Every launch fails: the worker counts its attempts, the pool fails and says why.
    failed = wait_for("the pool failed", lambda: (d := pool())["pool"]["phase"] == "failed" and d, timeout=60)
    (member,) = failed["workers"]
    stored = worker(member["id"])
    failure = stored["launch_failure"]
    assert failure["attempts"] >= 3, failure
    assert failure["error"] == f"no AMI matches '{no_ami_yet['pattern']}' in {REGION}", failure
    assert failure["since"] <= failure["last_at"]
    assert stored["aws_instance_id"] is None
    assert stored["summary"]["launch_failure"] == failure
    assert member["launch_failure"]["attempts"] >= 3
    error = failed["pool"]["error"]
    assert f"1 worker(s) could not be launched: {member['name']} (" in error, error
    assert "last error: no AMI matches" in error, error
    recorded = httpx.get(f"{cp.url}/api/pools/{pool_id}/history", headers=cp.viewer()).json()
    failing = [d for d in recorded if d["inputs"].get("rule") == "launch_failing"]
    assert len(failing) == 1, [d["reason"] for d in recorded]  # recorded once, however many attempts
    assert failing[0]["reason"].startswith("launching no more workers: 1 worker(s) could not be launched")
    more = wait_for("more attempts counted", lambda: (f := worker(member["id"])["launch_failure"])
                    and f["attempts"] > failure["attempts"] and f, timeout=30)
    assert more["since"] == failure["since"]
    assert [w["id"] for w in pool()["workers"]] == [member["id"]]  # no other worker piled up

    # 2. The AMI appears: the next attempt launches the instance, the failure is cleared, the pool recovers.
    register_ami(no_ami_yet["ec2"], no_ami_yet["ami_name"])
    launched = wait_for("the worker launched", lambda: (w := worker(member["id"]))["aws_instance_id"] and w,
                        timeout=60)
    assert launched["launch_failure"] is None
    cleared = [h for h in launched["state_history"] if h["field"] == "launch_failure"]
    assert [h["to"] for h in cleared] == ["failing", ""], cleared
    assert cleared[-1]["reason"].startswith("launched after ")
    recovered = wait_for("the pool ready", lambda: (d := pool())["pool"]["phase"] == "ready" and d, timeout=90)
    assert recovered["pool"]["error"] is None
    assert [w["id"] for w in recovered["workers"]] == [member["id"]]
    after = httpx.get(f"{cp.url}/api/pools/{pool_id}/history", headers=cp.viewer()).json()
    assert after[0]["inputs"].get("rule") != "launch_failing", after[0]
