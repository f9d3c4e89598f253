"""A pool end to end against real parts: the CPA (MongoDB-wire, Redis, etcd), moto (AWS), the CML simulator,
and both controllers, each leader-elected through etcd. The acceptance of the pools issue:

a lab-count pool (min 1, max 3, 2 sessions per worker) → its first worker is launched from the template in EC2,
licensed on CML, and the pool turns ready → 5 sessions of its track are booked → the sessions that do not fit
wait for the pool, which scales up to 3 → every session runs on the pool's workers → the sessions end → the
pool drains, deregisters and stops the 2 workers it no longer needs (they stay in the pool, stopped) → its
history says why at each step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from lablet_controller.main import build_host as build_lablet_controller
from lablet_controller.settings import LabletControllerSettings
from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.devstack.aws_seed import register_ami
from tests.fixtures.cml_simulator import CmlSimulator
from tests.fixtures.control_plane import API_KEY, ControlPlaneUnderTest
from tests.fixtures.lablet_api import create_definition, create_session
from tests.fixtures.polling import wait_for
from tests.fixtures.settings import from_environment
from worker_controller.main import build_host as build_worker_controller
from worker_controller.settings import WorkerControllerSettings

REGION = "ca-central-1"
M5ZN = {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200}


@pytest.fixture
def fleet(control_plane: ControlPlaneUnderTest, moto_server, cml_simulator_clean: CmlSimulator
          ) -> Iterator[dict[str, Any]]:
    """A CML AMI and a template of it in a region of its own, and both controllers running."""
    sim, tag = cml_simulator_clean, uuid.uuid4().hex[:8]
    aws = f"http://{moto_server.address}"
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=aws, aws_access_key_id="x", aws_secret_access_key="x")
    ami = register_ami(ec2, f"CML-2.9.{tag}-build")
    # A worker of no pool, discovered like any CML instance: sessions of the pool's track must not leave the
    # pool for it while the pool can still give them room.
    general = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="m5zn.metal")["Instances"][0]
    template = f"metal-{tag}"
    with control_plane.client() as http:
        created = http.post("/api/templates", headers=control_plane.admin(), json={
            "name": template, "instance_type": "m5zn.metal", "ami_name_pattern": f"CML-2.9.{tag}-*",
            "regions": {REGION: {}}, "capacity": M5ZN})
        assert created.status_code == 201, created.text
    common = dict(LCM_ENVIRONMENT="test", ETCD_HOST=control_plane.etcd.host, ETCD_PORT=control_plane.etcd.port,
                  ETCD_PREFIX=control_plane.prefix, CONTROL_PLANE_API_URL=control_plane.url,
                  CONTROL_PLANE_API_KEY=API_KEY, CONTROLLER_STATUS_REPORT_INTERVAL=1,
                  CML_WORKER_URL_TEMPLATE=f"{sim.url}/hosts/{{instance_id}}", CML_WORKER_API_USERNAME=sim.username,
                  CML_WORKER_API_PASSWORD=sim.password, CML_WORKER_VERIFY_TLS="false")
    workers = from_environment(
        WorkerControllerSettings, **common, CONTROLLER_IDENTITY="wc-pools", WORKER_CONTROLLER_LEADER_LEASE_TTL=3,
        WORKER_DISCOVERY_REGIONS=REGION, WORKER_DISCOVERY_AMI_NAME=f"CML-2.9.{tag}-*", WORKER_DISCOVERY_INTERVAL=2,
        METRICS_POLL_INTERVAL=1, WORKER_CONTROLLER_RECONCILE_INTERVAL=1, WORKER_AUTOSCALER_INTERVAL=1,
        AWS_ENDPOINT_URL=aws, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
        CML_LICENSE_TOKEN="U21hcnRMaWNlbnNpbmdUb2tlbg==")
    lablets = from_environment(
        LabletControllerSettings, **common, CONTROLLER_IDENTITY="lc-pools", LABLET_CONTROLLER_LEADER_LEASE_TTL=3,
        LABLET_SCHEDULING_INTERVAL=1, LABLET_CONTROLLER_RECONCILE_INTERVAL=1, LABLET_BOOT_POLL_INTERVAL=0.3)
    with serve_in_thread(build_worker_controller(workers).create_app()), \
            serve_in_thread(build_lablet_controller(lablets).create_app()):
        yield {"ec2": ec2, "template": template, "track": f"track-{tag}", "general": general["InstanceId"]}


def pool_detail(cp: ControlPlaneUnderTest, pool_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{cp.url}/api/pools/{pool_id}", headers=cp.viewer())
    assert answer.status_code == 200, answer.text
    return answer.json()


def history(cp: ControlPlaneUnderTest, pool_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{cp.url}/api/pools/{pool_id}/history", headers=cp.viewer())
    assert answer.status_code == 200, answer.text
    return answer.json()


def ec2_states(ec2, worker_ids: set[str]) -> dict[str, str]:
    """The state of each pool worker's instance, by worker id (from the tag LCM launches it with)."""
    found = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["lcm:worker-id"]}])
    return {tags["lcm:worker-id"]: i["State"]["Name"]
            for r in found["Reservations"] for i in r["Instances"]
            if (tags := {t["Key"]: t["Value"] for t in i.get("Tags", [])}).get("lcm:worker-id") in worker_ids}


def licensed_general_worker(cp: ControlPlaneUnderTest, instance_id: str) -> str:
    """The discovered worker of `instance_id`, once an operator has registered its licence."""
    def found():
        page = httpx.get(f"{cp.url}/api/workers", headers=cp.viewer(), params={"aws_region": REGION}).json()
        rows = [w for w in page["items"] if w["aws_instance_id"] == instance_id and w["service_status"] == "available"]
        return rows[0]["id"] if rows else None

    worker_id = wait_for("the general worker discovered, its CML up", found, timeout=30)
    assert httpx.post(f"{cp.url}/api/workers/{worker_id}/license/register", headers=cp.admin()).status_code == 200
    def licence() -> str:
        return str(httpx.get(f"{cp.url}/api/workers/{worker_id}", headers=cp.viewer()).json()["license"]["status"])

    wait_for("its licence registered", lambda: licence() == "registered")
    return worker_id


def test_a_lab_count_pool_scales_up_for_booked_sessions_and_down_when_they_end(control_plane, fleet) -> None:
    cp, ec2 = control_plane, fleet["ec2"]
    general = licensed_general_worker(cp, fleet["general"])
    with cp.client() as http:
        created = http.post("/api/pools", headers=cp.admin(), json={
            "name": "ccna-pool", "lab_track": fleet["track"], "template_name": fleet["template"],
            "regions": [REGION], "scaling": {
                "policy": "lab_count_based", "min_workers": 1, "max_workers": 3, "max_labs_per_worker": 2,
                "min_labs_per_worker": 1, "scale_up_cooldown_minutes": 0, "scale_down_cooldown_minutes": 0,
                "scale_down_delay_after_add_minutes": 0}})
        assert created.status_code == 201, created.text
    pool_id = created.json()["id"]

    # 1. Its first worker: launched from the template in EC2, licensed on CML, ready; the pool is ready.
    def ready(count: int):
        def probe():
            detail = pool_detail(cp, pool_id)
            serving = [w for w in detail["workers"] if w["phase"] in ("READY", "ACTIVE")]
            return detail if len(serving) == count and detail["pool"]["phase"] == "ready" else None
        return probe

    detail = wait_for("the pool's first worker ready", ready(1), timeout=60)
    (first,) = detail["workers"]
    assert first["license_status"] == "registered"
    assert first["pool_id"] == pool_id
    assert first["lab_track"] == fleet["track"]
    assert ec2_states(ec2, {first["id"]}) == {first["id"]: "running"}
    launch = history(cp, pool_id)[-1]
    assert launch["action"] == "scale_up"
    assert "launching 1 from template" in launch["reason"]
    assert launch["launched"] == [first["id"]]

    # 2. Five sessions of its track: two fit on the first worker, the others wait; the pool grows to 3.
    definition = create_definition(cp, name=f"pool-lab-{uuid.uuid4().hex[:6]}", lab_track=fleet["track"])
    sessions = [create_session(cp, definition["id"], owner=f"student-{n}")["id"] for n in range(5)]
    detail = wait_for("the pool scaled up to 3 ready workers", ready(3), timeout=90)
    # Newest first; one step or two, as the bookings reached the scheduler.
    ups = [d for d in history(cp, pool_id) if d["inputs"].get("rule") in ("labs_above_max", "bookings_ahead")]
    assert ups[-1]["from_workers"] == 1
    assert ups[0]["to_workers"] == 3
    # Sessions booked for now count as bookings too (the forecast), or as sessions waiting for the pool.
    assert all(d["action"] == "scale_up" and ("at 2 per worker" in d["reason"] or "lead time" in d["reason"])
               for d in ups), [(d["action"], d["reason"]) for d in ups]
    assert {w for d in ups for w in d["launched"]} == {w["id"] for w in detail["workers"]} - {first["id"]}
    pool_workers = {w["id"] for w in detail["workers"]}

    def all_placed():
        current = [httpx.get(f"{cp.url}/api/lablet-sessions/{s}", headers=cp.viewer()).json() for s in sessions]
        return current if all(s["status"] in ("ready", "running") for s in current) else None

    placed = wait_for("every session running on the pool's workers", all_placed, timeout=90)
    assert {s["worker_id"] for s in placed} <= pool_workers
    assert general not in pool_workers
    per_worker = [sum(1 for s in placed if s["worker_id"] == w) for w in pool_workers]
    assert sorted(per_worker) == [1, 2, 2]  # at most the pool's 2 sessions per worker
    assert all(states == "running" for states in ec2_states(ec2, pool_workers).values())

    # 3. The sessions end: the pool goes back to its minimum; the two workers it no longer needs are drained,
    # their licences released, and their instances stopped. They stay in the pool, stopped.
    with cp.client() as http:
        for session_id in sessions:
            assert http.post(f"/api/lablet-sessions/{session_id}/terminate", headers=cp.admin()).status_code == 200

    def scaled_down():
        detail = pool_detail(cp, pool_id)
        stopped = [w for w in detail["workers"] if w["status"] == "stopped"]
        return detail if len(stopped) == 2 and detail["pool"]["phase"] == "ready" else None

    detail = wait_for("two workers drained, unlicensed and stopped", scaled_down, timeout=120)
    stopped = {w["id"] for w in detail["workers"] if w["status"] == "stopped"}
    for worker_id in stopped:
        stored = httpx.get(f"{cp.url}/api/workers/{worker_id}", headers=cp.viewer()).json()
        # Released before the instance went down: CML is back in evaluation mode, nothing counted in SSM.
        assert stored["license"]["status"] in ("unregistered", "evaluation"), stored["license"]
        changes = [(h["field"], h["to"]) for h in stored["state_history"]]
        assert changes.index(("license", "deregistering")) < changes.index(("status", "stopped")), changes
    assert ec2_states(ec2, stopped) == dict.fromkeys(stopped, "stopped")
    assert detail["pool"]["capacity"]["workers"] == 1
    assert detail["pool"]["capacity"]["parked"] == 2
    # The policy's decision; when the sessions end a moment apart, a worker still holding one is retired after
    # it by a converging decision (the size stands at 1).
    down = next(d for d in history(cp, pool_id) if d["inputs"].get("rule") == "labs_below_min")
    assert (down["action"], down["from_workers"], down["to_workers"]) == ("scale_down", 3, 1)
    downs = [d for d in history(cp, pool_id) if d["action"] == "scale_down"]
    assert {w for d in downs for w in d["retired"]} == stopped
    assert "worker(s) that hold no session" in down["reason"]


def test_a_deleted_pool_drains_then_terminates_its_workers_each_licence_released_first(control_plane,
                                                                                         fleet) -> None:
    """Delete: the empty worker and the stopped one are terminated; the worker holding a session keeps running
    (licensed, in EC2) until the session ends, then is terminated; every licence is released before its
    instance goes; the pool is terminated last."""
    cp, ec2 = control_plane, fleet["ec2"]
    with cp.client() as http:
        created = http.post("/api/pools", headers=cp.admin(), json={
            "name": "deleted-pool", "lab_track": fleet["track"], "template_name": fleet["template"],
            "regions": [REGION], "scaling": {"policy": "none", "min_workers": 0, "max_workers": 3}})
        assert created.status_code == 201, created.text
        pool_id = created.json()["id"]
        assert http.post(f"/api/pools/{pool_id}/scale", headers=cp.admin(), json={"workers": 3}).status_code == 200

    def licensed(count: int):
        def probe():
            detail = pool_detail(cp, pool_id)
            rows = [w for w in detail["workers"] if w["phase"] in ("READY", "ACTIVE")
                    and w["license_status"] == "registered"]
            return detail if len(rows) == count else None
        return probe

    members = {w["id"] for w in wait_for("three workers licensed", licensed(3), timeout=90)["workers"]}
    definition = create_definition(cp, name=f"pool-lab-{uuid.uuid4().hex[:6]}", lab_track=fleet["track"])
    session_id = create_session(cp, definition["id"])["id"]

    def session() -> dict[str, Any]:
        return httpx.get(f"{cp.url}/api/lablet-sessions/{session_id}", headers=cp.viewer()).json()

    held = wait_for("the session running on a pool worker", lambda: (s := session())["status"] in (
        "ready", "running") and s["worker_id"], timeout=60)
    assert held in members
    with cp.client() as http:
        assert http.post(f"/api/pools/{pool_id}/scale", headers=cp.admin(), json={"workers": 2}).status_code == 200

    def one_stopped():
        detail = pool_detail(cp, pool_id)
        stopped = [w["id"] for w in detail["workers"] if w["status"] == "stopped"]
        return stopped[0] if len(stopped) == 1 else None

    parked = wait_for("the pool's extra worker stopped", one_stopped, timeout=60)
    assert parked != held
    with cp.client() as http:
        assert http.delete(f"/api/pools/{pool_id}", headers=cp.admin()).status_code == 202
    others = members - {held}

    def others_terminated():
        return ec2_states(ec2, others) == dict.fromkeys(others, "terminated")

    wait_for("the workers without a session terminated", others_terminated, timeout=60)
    worker = httpx.get(f"{cp.url}/api/workers/{held}", headers=cp.viewer()).json()
    assert (worker["status"], worker["drain"]["then"], worker["license"]["status"]) == (
        "draining", "terminated", "registered")
    assert ec2_states(ec2, {held}) == {held: "running"}
    assert session()["status"] in ("ready", "running")
    assert pool_detail(cp, pool_id)["pool"]["phase"] == "terminating"

    with cp.client() as http:
        assert http.post(f"/api/lablet-sessions/{session_id}/terminate", headers=cp.admin()).status_code == 200
    wait_for("the pool terminated", lambda: pool_detail(cp, pool_id)["pool"]["phase"] == "terminated", timeout=90)
    assert ec2_states(ec2, members) == dict.fromkeys(members, "terminated")
    for worker_id in members:
        stored = httpx.get(f"{cp.url}/api/workers/{worker_id}", headers=cp.viewer()).json()
        changes = [(h["field"], h["to"]) for h in stored["state_history"]]
        assert stored["status"] == "terminated"
        assert ("license", "deregistering") in changes, changes
        assert changes.index(("license", "deregistering")) < changes.index(("status", "terminated")), changes
    reasons = [d["reason"] for d in history(cp, pool_id) if d["trigger"] == "delete"]
    assert reasons[0] == "pool deleted: every worker is terminated"
    assert any(r.startswith("pool deleted: retiring") for r in reasons), reasons
