"""A deposed worker-controller leader never changes EC2.

Two replicas run against moto, the CPA and the CML simulator. The leader is frozen (its whole event loop
blocked, as SIGSTOP would) right after its EC2 read has come back in the middle of a reconcile that decided
to stop an instance; while it sleeps past its lease, the operator changes her mind and the other replica takes
over. When the old leader wakes up, its coroutine resumes with the stale decision: it must not send
StopInstances (the fence refuses, and the decision is older than the fence margin so it is checked again).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import boto3
import httpx

from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.devstack.aws_seed import register_ami
from tests.fixtures.control_plane import API_KEY
from tests.fixtures.polling import wait_for
from tests.fixtures.settings import from_environment
from worker_controller.main import build_host
from worker_controller.settings import WorkerControllerSettings

REGION = "eu-south-1"
TTL = 3
FREEZE_SECONDS = TTL + 4


def settings_for(identity: str, cp, moto_url: str, cml_url: str, ami_glob: str) -> WorkerControllerSettings:
    return from_environment(
        WorkerControllerSettings,
        LCM_ENVIRONMENT="test", ETCD_HOST=cp.etcd.host, ETCD_PORT=cp.etcd.port, ETCD_PREFIX=cp.prefix,
        CONTROL_PLANE_API_URL=cp.url, CONTROL_PLANE_API_KEY=API_KEY, CONTROLLER_IDENTITY=identity,
        WORKER_CONTROLLER_LEADER_LEASE_TTL=TTL, WORKER_DISCOVERY_REGIONS=REGION, WORKER_DISCOVERY_AMI_NAME=ami_glob,
        WORKER_DISCOVERY_INTERVAL=1, METRICS_POLL_INTERVAL=1,
        WORKER_CONTROLLER_RECONCILE_INTERVAL=2, CONTROLLER_STATUS_REPORT_INTERVAL=1,
        AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
        CML_WORKER_URL_TEMPLATE=f"{cml_url}/hosts/{{instance_id}}", CML_WORKER_API_USERNAME="admin",
        CML_WORKER_API_PASSWORD="cml-simulator-pass", CML_WORKER_VERIFY_TLS="false")


class Freezer:
    """Wraps a replica's `instances_by_id`: once armed, the next single-instance read of `target` comes back
    from EC2 and then blocks the replica's event loop thread for `seconds` before its coroutine goes on."""

    def __init__(self, fleet: Any, target: str, seconds: float) -> None:
        self._read = fleet.instances_by_id
        self.target, self.seconds = target, seconds
        self.armed = threading.Event()
        self.frozen = threading.Event()
        self.thawed = threading.Event()
        fleet.instances_by_id = self

    async def __call__(self, region: str, ids: list[str]) -> Any:
        found = await self._read(region, ids)
        if self.armed.is_set() and list(ids) == [self.target]:
            self.armed.clear()
            self.frozen.set()
            time.sleep(self.seconds)  # blocks the whole loop, as SIGSTOP would
            self.thawed.set()
        return found


def _status(url: str) -> dict[str, Any] | None:
    try:
        return httpx.get(f"{url}/status", timeout=0.5).json()
    except httpx.HTTPError:
        return None


def test_a_frozen_leader_that_lost_its_lease_makes_no_ec2_call(control_plane, moto_server, cml_simulator) -> None:
    moto_url = f"http://{moto_server.address}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="x",
                       aws_secret_access_key="x")
    tag = uuid.uuid4().hex[:8]
    ami = register_ami(ec2, f"CML-2.9.{tag}-build")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2,
                                                       InstanceType="m5zn.metal")["Instances"]]
    target = ids[1]
    hosts = {name: build_host(settings_for(name, control_plane, moto_url, cml_simulator.url, f"CML-2.9.{tag}-*"))
             for name in ("wc-old", "wc-new")}
    old_fleet = hosts["wc-old"].loops[2]._reconcile.__self__._aws  # type: ignore[attr-defined]
    new_fleet = hosts["wc-new"].loops[2]._reconcile.__self__._aws  # type: ignore[attr-defined]
    freezer = Freezer(old_fleet, target, FREEZE_SECONDS)

    def worker() -> dict[str, Any] | None:
        page = httpx.get(f"{control_plane.url}/api/workers", headers=control_plane.viewer(),
                         params={"aws_region": REGION}).json()
        return {w["aws_instance_id"]: w for w in page["items"]}.get(target)

    with serve_in_thread(hosts["wc-old"].create_app()) as old_url:
        wait_for("the first replica leads", lambda: (_status(old_url) or {}).get("is_leader"), timeout=15)
        with serve_in_thread(hosts["wc-new"].create_app()) as new_url:
            found = wait_for("the instance imported, running, no licence",
                             lambda: (w := worker()) and w["status"] == "running" and w, timeout=30)
            with httpx.Client(base_url=control_plane.url, headers=control_plane.admin(), timeout=10) as http:
                # The simulated hosts start licensed; drop this one's licence first, so that the stop decision
                # goes straight to EC2 (the licence release is exercised elsewhere).
                http.post(f"/api/workers/{found['id']}/license/deregister").raise_for_status()
                wait_for("licence released", lambda: (w := http.get(f"/api/workers/{found['id']}").json())
                         and w["license"]["status"] in ("unregistered", "evaluation")
                         and not w["license"]["pending_action"], timeout=30)
                freezer.armed.set()
                assert http.post(f"/api/workers/{found['id']}/stop").status_code == 200
                assert freezer.frozen.wait(15), "the leader never read the instance to stop it"
                # The leader sleeps with its decision; the operator changes her mind at once ...
                assert http.post(f"/api/workers/{found['id']}/start").status_code == 200
            # ... and the other replica takes over once the lease has run out.
            wait_for("the other replica leads", lambda: (_status(new_url) or {}).get("is_leader"),
                     timeout=FREEZE_SECONDS + 5)
            assert freezer.thawed.wait(FREEZE_SECONDS + 5)
            wait_for("the old replica stepped down", lambda: (s := _status(old_url)) and not s["is_leader"])
            time.sleep(2.0)  # time enough for a stale StopInstances to reach moto
    state = ec2.describe_instances(InstanceIds=[target])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    assert old_fleet.calls.get("stop_instances", 0) == 0
    assert new_fleet.calls.get("stop_instances", 0) == 0
