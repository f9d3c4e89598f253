"""The worker-controller end to end against real servers: moto (AWS), the CPA on MongoDB-wire/Redis/etcd,
and the CML simulator. Discovery, EC2 sync, start/stop through the API, CML telemetry, idle auto-pause."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.devstack.aws_seed import register_ami
from tests.fixtures.control_plane import API_KEY
from tests.fixtures.polling import wait_for
from worker_controller.main import build_host
from worker_controller.settings import WorkerControllerSettings

REGION = "eu-west-3"
STRAY_LAB = (Path(__file__).parents[1] / "fixtures" / "cml" / "lab.yaml").read_text()


@pytest.fixture
def fleet(control_plane, moto_server, cml_simulator):
    """A CML AMI with two running instances and one from another AMI, plus a running worker-controller."""
    url = f"http://{moto_server.address}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url, aws_access_key_id="x", aws_secret_access_key="x")
    tag = uuid.uuid4().hex[:8]
    ami = register_ami(ec2, f"CML-2.9.{tag}-build")
    other = register_ami(ec2, f"ubuntu-{tag}")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2,
                                                       InstanceType="m5zn.metal")["Instances"]]
    ec2.run_instances(ImageId=other, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    settings = WorkerControllerSettings(
        LCM_ENVIRONMENT="test", ETCD_HOST=control_plane.etcd.host, ETCD_PORT=control_plane.etcd.port,
        ETCD_PREFIX=control_plane.prefix, CONTROL_PLANE_API_URL=control_plane.url, CONTROL_PLANE_API_KEY=API_KEY,
        CONTROLLER_IDENTITY="wc-test", WORKER_CONTROLLER_LEADER_LEASE_TTL=3,
        WORKER_DISCOVERY_REGIONS=REGION, WORKER_DISCOVERY_AMI_NAME=f"CML-2.9.{tag}-*",
        WORKER_DISCOVERY_INTERVAL=1, METRICS_POLL_INTERVAL=1,
        WORKER_CONTROLLER_RECONCILE_INTERVAL=2, CONTROLLER_STATUS_REPORT_INTERVAL=1,
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
        CML_WORKER_URL_TEMPLATE=f"{cml_simulator.url}/hosts/{{instance_id}}",
        CML_WORKER_API_USERNAME=cml_simulator.username, CML_WORKER_API_PASSWORD=cml_simulator.password,
        CML_WORKER_VERIFY_TLS="false", CML_LICENSE_TOKEN="U21hcnRMaWNlbnNpbmdUb2tlbg==",
    )
    with serve_in_thread(build_host(settings).create_app()):
        yield ec2, ids


def workers(cp) -> dict[str, dict[str, Any]]:
    """The rows of the region's workers (`WorkerSummary`), by instance id."""
    page = httpx.get(f"{cp.url}/api/workers", headers=cp.viewer(), params={"aws_region": REGION}).json()
    return {w["aws_instance_id"]: w for w in page["items"]}


def detail(cp, worker_id: str) -> dict[str, Any]:
    """One worker with its latest telemetry (`WorkerDetail`)."""
    return httpx.get(f"{cp.url}/api/workers/{worker_id}", headers=cp.viewer()).json()


def test_discovery_metrics_and_lifecycle(control_plane, fleet) -> None:
    ec2, ids = fleet
    found = wait_for("both CML instances imported", lambda: len(workers(control_plane)) == 2 and workers(control_plane))
    assert set(found) == set(ids)  # the Ubuntu instance is not a worker

    def with_cml_data():
        current = {iid: detail(control_plane, w["id"]) for iid, w in workers(control_plane).items()}
        ready = [w for w in current.values() if w["telemetry"] and w["telemetry"]["cml"]
                 and w["telemetry"]["cml"]["all_cpu_count"] and w["service_status"] == "available"]
        return current if len(ready) == 2 else None

    current = wait_for("CML telemetry on both workers", with_cml_data, timeout=30)
    worker = current[ids[0]]
    cml = worker["telemetry"]["cml"]
    assert cml["all_memory_total"] > 0
    assert cml["all_disk_total"] > 0
    assert cml["computes"]
    assert cml["health_valid"] is not None
    assert worker["license"]["registration_status"] is not None
    assert worker["health_status"] in ("healthy", "degraded")
    assert worker["telemetry"]["utilisation"]["memory_percent"] is not None
    assert workers(control_plane)[ids[0]]["memory_percent"] is not None  # the row shows it too

    # Stopped in EC2 behind LCM's back → stopped in LCM (EC2 is authoritative).
    ec2.stop_instances(InstanceIds=[ids[1]])
    wait_for("status stopped", lambda: workers(control_plane)[ids[1]]["status"] == "stopped")
    # Started through the API → the controller starts the instance → running.
    wid = workers(control_plane)[ids[1]]["id"]
    started = httpx.post(f"{control_plane.url}/api/workers/{wid}/start", headers=control_plane.admin())
    assert started.status_code == 200
    wait_for("running again", lambda: workers(control_plane)[ids[1]]["status"] == "running")
    state = ec2.describe_instances(InstanceIds=[ids[1]])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"

    # Controllers' stats are served by the CPA.
    def controller_stats():
        overview = httpx.get(f"{control_plane.url}/api/system/controllers", headers=control_plane.viewer()).json()
        entry = overview["controllers"].get("worker-controller") or {}
        leaders = [r for r in entry.get("replicas", []) if r["is_leader"]]
        loops = {loop["name"]: loop for loop in leaders[0]["loops"]} if leaders else {}
        return loops if loops.get("metrics", {}).get("runs") and loops.get("discovery", {}).get("runs") else None

    loops = wait_for("controller stats", controller_stats)
    assert loops["metrics"]["success_rate"] > 0
    assert "workers_by_health" in loops["metrics"]


def test_idle_worker_is_auto_paused(control_plane, fleet) -> None:
    ec2, ids = fleet
    wait_for("imported", lambda: len(workers(control_plane)) == 2)
    with httpx.Client(base_url=control_plane.url, headers=control_plane.admin()) as http:
        keep = workers(control_plane)[ids[0]]["id"]
        assert http.put(f"/api/workers/{keep}/idle-detection", json={"enabled": False}).status_code == 200
        current = http.get("/api/settings").json()
        assert http.put("/api/settings", json={"version": current["version"], "idle": {
            "enabled": True, "threshold_minutes": 0.05, "snooze_minutes_after_resume": 0, "auto_pause": True}}
        ).status_code == 200
    pause = workers(control_plane)[ids[1]]["id"]

    def paused() -> bool:
        worker = httpx.get(f"{control_plane.url}/api/workers/{pause}", headers=control_plane.viewer()).json()

        return worker["desired_status"] == "stopped" and worker["activity"]["pause_reason"] == "idle_timeout"

    wait_for("auto-pause requested", paused, timeout=30)
    wait_for("instance stopped by the controller", lambda: ec2.describe_instances(InstanceIds=[ids[1]])[
        "Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped")
    wait_for("worker stopped", lambda: workers(control_plane)[ids[1]]["status"] == "stopped")
    kept = workers(control_plane)[ids[0]]
    assert kept["desired_status"] is None
    assert kept["status"] == "running"


def test_worker_created_from_a_template_is_provisioned(control_plane, fleet) -> None:
    ec2, ids = fleet
    wait_for("imported", lambda: len(workers(control_plane)) == 2)
    template = {"name": "bench-metal", "instance_type": "m5zn.metal",
                "ami_name_pattern": ec2.describe_images(ImageIds=[ec2.describe_instances(InstanceIds=[ids[0]])[
                    "Reservations"][0]["Instances"][0]["ImageId"]])["Images"][0]["Name"],
                "regions": {REGION: {"subnet_id": None, "security_group_ids": []}},
                "ebs": {"volume_type": "gp3", "size_gb": 300},
                "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 300, "max_nodes": 100}}
    with httpx.Client(base_url=control_plane.url, headers=control_plane.admin(), timeout=10) as http:
        assert http.post("/api/templates", json=template).status_code == 201
        body = {"template_name": "bench-metal", "aws_region": REGION, "name": "made-by-lcm", "idempotency_key": "k1"}
        created = http.post("/api/workers", json=body)
        assert created.status_code == 201, created.text
        again = http.post("/api/workers", json=body)
        assert again.json()["id"] == created.json()["id"]  # idempotent: one worker, one instance
        worker_id = created.json()["id"]
        assert created.json()["status"] == "pending"
        assert created.json()["origin"] == "created"
        wrong_region = http.post("/api/workers", json={**body, "aws_region": "ap-east-1", "idempotency_key": "k2"})
        assert wrong_region.status_code == 422

        def running():
            worker = http.get(f"/api/workers/{worker_id}").json()
            return worker if worker["status"] == "running" and worker["aws_instance_id"] else None

        worker = wait_for("provisioned and running", running, timeout=30)
    instance = ec2.describe_instances(InstanceIds=[worker["aws_instance_id"]])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["lcm:worker-id"] == worker_id
    assert tags["Name"] == "made-by-lcm"
    assert instance["InstanceType"] == "m5zn.metal"
    # Discovery sees the new instance (its AMI matches) but attaches it instead of importing a second worker.
    time.sleep(2.5)
    assert len(workers(control_plane)) == 3


def test_licence_deregister_and_register_through_cml(control_plane, fleet) -> None:
    _ec2, ids = fleet

    def available():
        current = workers(control_plane).get(ids[0])
        return current if current and current["service_status"] == "available" else None

    worker_id = wait_for("CML available", available, timeout=30)["id"]
    with httpx.Client(base_url=control_plane.url, headers=control_plane.admin(), timeout=10) as http:
        def licence() -> dict[str, Any]:
            return http.get(f"/api/workers/{worker_id}").json()["license"]

        wait_for("registered (the simulated hosts start licensed)", lambda: licence()["status"] == "registered")
        assert http.post(f"/api/workers/{worker_id}/license/deregister").json()["license"]["status"] == "deregistering"
        # Deregistered hosts fall back to CML's evaluation mode (NOT_REGISTERED + EVAL_MODE).
        gone = wait_for("deregistered", lambda: (lic := licence())["status"] in ("unregistered", "evaluation")
                        and not lic["pending_action"] and lic, timeout=30)
        assert gone["registration_status"] == "NOT_REGISTERED"
        assert gone["node_limit"] == 5  # what CML allows unlicensed
        assert http.post(f"/api/workers/{worker_id}/license/register").json()["license"]["status"] == "registering"
        done = wait_for("registered again", lambda: (lic := licence())["status"] == "registered"
                        and not lic["pending_action"] and lic, timeout=30)
    assert done["registration_status"] == "COMPLETED"
    assert done["node_limit"]


def test_a_registered_worker_releases_its_licence_before_it_goes_down(control_plane, fleet, cml_simulator) -> None:
    """Terminate: its stray lab is stopped, its licence released (UNLICENSING), then the instance terminated.
    Stop, then start: the licence released for the stop is registered again once CML is back."""
    ec2, ids = fleet

    def worker(instance_id: str) -> dict[str, Any] | None:
        current = workers(control_plane).get(instance_id)
        ok = current and current["service_status"] == "available" and current["license_status"] == "registered"
        return current if ok else None

    doomed = wait_for("available and registered", lambda: worker(ids[0]), timeout=30)
    paused = wait_for("available and registered", lambda: worker(ids[1]), timeout=30)
    with cml_simulator.api(ids[0]) as api:  # a lab nobody booked through LCM, with running nodes
        lab = api.post("/import", params={"title": "stray"}, content=STRAY_LAB).json()["id"]
        assert api.put(f"/labs/{lab}/start").status_code in (200, 204)
    with httpx.Client(base_url=control_plane.url, headers=control_plane.admin(), timeout=10) as http:
        assert http.post(f"/api/workers/{doomed['id']}/terminate").status_code == 200
        gone = wait_for("terminated", lambda: (w := http.get(f"/api/workers/{doomed['id']}").json())
                        and w["status"] == "terminated" and w, timeout=40)
        assert http.post(f"/api/workers/{paused['id']}/stop").status_code == 200
        wait_for("stopped", lambda: http.get(f"/api/workers/{paused['id']}").json()["status"] == "stopped", timeout=40)
        stopped = http.get(f"/api/workers/{paused['id']}").json()
        assert stopped["license"]["status"] in ("unregistered", "evaluation")
        assert stopped["license"]["restore_on_start"] is True
        assert http.post(f"/api/workers/{paused['id']}/start").status_code == 200
        wait_for("registered again after the start", lambda: (w := http.get(f"/api/workers/{paused['id']}").json())
                 ["status"] == "running" and w["license"]["status"] == "registered", timeout=60)
    assert gone["license"]["status"] == "unregistered"
    licence_path = [(c["from"], c["to"]) for c in gone["state_history"] if c["field"] == "license"]
    assert ("registered", "deregistering") in licence_path
    with cml_simulator.api(ids[0]) as api:
        assert api.get("/licensing").json()["registration"]["status"] == "NOT_REGISTERED"
        assert api.get(f"/labs/{lab}").json()["state"] == "STOPPED"
        events = api.get("/telemetry/events").json()
    released = [e["timestamp"] for e in events
                if e["category"] == "license_info" and e["data"]["action"] == "deregister"]
    terminating = [c["at"] for c in gone["state_history"] if c["field"] == "status" and c["to"] in ("terminating",
                                                                                                  "terminated")]
    assert datetime.fromisoformat(released[0]) < datetime.fromisoformat(terminating[0])
    assert ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]["State"]["Name"] in (
        "shutting-down", "terminated")
