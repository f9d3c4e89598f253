"""The lablet-controller end to end against real parts: the CPA (MongoDB-wire, Redis, etcd), the CML
simulator and etcd's election and watches. The acceptance of the lablets issue:

definition from the sample topology → session → scheduled on a worker → lab started on the simulated CML
with the allocated ports in its node tags, every node BOOTED → ready → running → manual observation
(observed resources and ports on the session) → a tag edited on CML → the next observation reports port
drift → end of the timeslot → lab stopped, wiped, deleted → session stopped → capacity back to what it was.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lablet_controller.domain.sessions import lab_title
from lablet_controller.main import build_host
from lablet_controller.settings import LabletControllerSettings
from lcm_core.testing.asgi_server import serve_in_thread
from tests.fixtures.cml_simulator import CmlSimulator
from tests.fixtures.control_plane import API_KEY, ControlPlaneUnderTest, discovered
from tests.fixtures.lablet_api import create_definition, report_cml_health
from tests.fixtures.polling import wait_for
from tests.fixtures.settings import from_environment

SLOT_SECONDS = 40  # long enough for the steps before the end of the slot on a loaded machine


def registered_worker(cp: ControlPlaneUnderTest) -> dict[str, Any]:
    """A running, healthy worker with CML available and a registered licence, as the worker-controller
    reports it."""
    n = random.randint(10**6, 10**9)
    with cp.client() as http:
        worker_id = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                              json={"instances": [discovered(n)]}).json()["created"][0]
        assert http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                         json={"ec2_state": "running", "service_status": "available"}).status_code == 200
        report_cml_health(cp, http, worker_id)
        assert http.post(f"/api/workers/{worker_id}/license/register", headers=cp.admin()).status_code == 200
        done = http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(), json={
            "status": "registered", "finished": True,
            "details": {"registration_status": "COMPLETED", "authorization_status": "IN_COMPLIANCE"}})
        assert done.status_code == 200, done.text
        return done.json()


@pytest.fixture
def lablet_controller(control_plane: ControlPlaneUnderTest, cml_simulator_clean: CmlSimulator) -> Iterator[str]:
    sim = cml_simulator_clean
    settings = from_environment(
        LabletControllerSettings,
        LCM_ENVIRONMENT="test", ETCD_HOST=control_plane.etcd.host, ETCD_PORT=control_plane.etcd.port,
        ETCD_PREFIX=control_plane.prefix, CONTROL_PLANE_API_URL=control_plane.url, CONTROL_PLANE_API_KEY=API_KEY,
        CONTROLLER_IDENTITY="lc-test", LABLET_CONTROLLER_LEADER_LEASE_TTL=3, CONTROLLER_STATUS_REPORT_INTERVAL=1,
        LABLET_SCHEDULING_INTERVAL=1, LABLET_CONTROLLER_RECONCILE_INTERVAL=2, LABLET_BOOT_POLL_INTERVAL=0.3,
        CML_WORKER_URL_TEMPLATE=f"{sim.url}/hosts/{{instance_id}}", CML_WORKER_API_USERNAME=sim.username,
        CML_WORKER_API_PASSWORD=sim.password, CML_WORKER_VERIFY_TLS="false",
    )
    with serve_in_thread(build_host(settings).create_app()) as url:
        yield url


def session(cp: ControlPlaneUnderTest, session_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{cp.url}/api/lablet-sessions/{session_id}", headers=cp.viewer())
    assert answer.status_code == 200, answer.text
    return answer.json()


def worker(cp: ControlPlaneUnderTest, worker_id: str) -> dict[str, Any]:
    return httpx.get(f"{cp.url}/api/workers/{worker_id}", headers=cp.viewer()).json()


def in_status(cp: ControlPlaneUnderTest, session_id: str, *statuses: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        current = session(cp, session_id)
        return current if current["status"] in statuses else None
    return probe


def test_session_from_definition_to_teardown(control_plane: ControlPlaneUnderTest, cml_simulator_clean: CmlSimulator,
                                             lablet_controller: str) -> None:
    cp, sim = control_plane, cml_simulator_clean
    host = registered_worker(cp)
    worker_id, instance_id = host["id"], host["aws_instance_id"]
    capacity_before = worker(cp, worker_id)["capacity"]["allocated"]
    definition = create_definition(cp, lab_track=None)
    start = datetime.now(UTC)
    with cp.client() as http:
        created = http.post("/api/lablet-sessions", headers=cp.admin(), json={
            "definition_id": definition["id"], "owner": "student-1", "timeslot_start": start.isoformat(),
            "timeslot_end": (start + timedelta(seconds=SLOT_SECONDS)).isoformat()})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]

    # Scheduled on the worker with ports from the CPA's range, then the lab is built and booted.
    running = wait_for("session running", in_status(cp, sid, "running"))
    assert running["worker_id"] == worker_id
    ports = running["allocated_ports"]
    assert set(ports) == {"R1_serial", "R2_serial", "PC_serial", "PC_vnc"}
    assert running["last_decision"]["success"] is True
    assert running["last_decision"]["strategy"] == "best_fit"
    assert [h["to"] for h in running["state_history"]][-4:] == ["scheduled", "instantiating", "ready", "running"]
    lab_id = running["cml_lab_id"]
    with sim.api(instance_id) as api:
        lab = api.get(f"/labs/{lab_id}").json()
        assert lab["lab_title"] == lab_title(sid)
        nodes = {n["label"]: n for n in api.get(f"/labs/{lab_id}/nodes", params={"data": "true"}).json()}
    assert {n["state"] for n in nodes.values()} == {"BOOTED"}
    assert nodes["R1"]["tags"] == [f"serial:{ports['R1_serial']}"]
    assert nodes["PC"]["tags"] == [f"serial:{ports['PC_serial']}", f"vnc:{ports['PC_vnc']}", "student"]
    held = worker(cp, worker_id)["capacity"]
    assert held["allocated"]["cpu_cores"] > capacity_before["cpu_cores"]
    assert held["port_allocations"][sid] == ports

    # Manual observation: the admin asks, the controller observes through the etcd key.
    with cp.client() as http:
        assert http.post(f"/api/lablet-sessions/{sid}/observe-resources", headers=cp.admin()).status_code == 202
    observed = wait_for("first observation", lambda: (s := session(cp, sid))["observation_count"] >= 1 and s)
    assert observed["observed_ports"] == ports
    assert observed["port_drift_detected"] is False
    resources = observed["observed_resources"]
    assert resources["observer"] == "manual"
    assert resources["actual_node_count"] == 4
    assert resources["total_memory_mb"] > 0
    # The trigger is consumed: the CPA deletes the etcd key once the observation is recorded.
    wait_for("trigger key deleted", lambda: cp.etcd_json(f"sessions/{sid}/observe_resources") is None)

    # A tag edited on CML behind LCM's back: the next observation reports port drift.
    with sim.api(instance_id) as api:
        assert api.patch(f"/labs/{lab_id}/nodes/{nodes['PC']['id']}",
                         json={"tags": [f"serial:{ports['PC_serial']}", "vnc:7777"]}).status_code == 200
    with cp.client() as http:
        assert http.post(f"/api/lablet-sessions/{sid}/observe-resources", headers=cp.admin()).status_code == 202
    drifted = wait_for("drift detected", lambda: (s := session(cp, sid))["port_drift_detected"] and s)
    assert drifted["observed_ports"]["PC_vnc"] == 7777
    assert drifted["observation_count"] >= 2

    # End of the timeslot: collecting (observed by the controller), stopping, lab gone, stopped.
    stopped = wait_for("session stopped", in_status(cp, sid, "stopped"), timeout=SLOT_SECONDS + 20)
    assert [h["to"] for h in stopped["state_history"]][-3:] == ["collecting", "stopping", "stopped"]
    assert stopped["observed_resources"]["observer"] == "lablet-controller"
    with sim.api(instance_id) as api:
        assert api.get(f"/labs/{lab_id}").status_code == 404
    released = worker(cp, worker_id)["capacity"]
    assert released["allocated"] == capacity_before
    assert sid not in released["port_allocations"]

    # The controller's loops show up in the control plane's stats.
    def loops() -> dict[str, Any] | None:
        overview = httpx.get(f"{cp.url}/api/system/controllers", headers=cp.viewer()).json()
        replicas = (overview["controllers"].get("lablet-controller") or {}).get("replicas", [])
        leading = [r for r in replicas if r["is_leader"]]
        found = {loop["name"]: loop for loop in leading[0]["loops"]} if leading else {}
        # Reports come every second: wait for one sent after the teardown.
        return found if found.get("sessions", {}).get("actions", {}).get("teardown") else None

    stats = wait_for("controller stats", loops)
    assert stats["scheduling"]["runs"] > 0
    assert stats["scheduling"]["strategy"] == "best_fit"
    assert stats["sessions"]["successes"] > 0
    assert stats["sessions"]["actions"]["import"] >= 1


def test_no_candidate_keeps_the_session_pending_with_a_reason(control_plane: ControlPlaneUnderTest,
                                                              lablet_controller: str) -> None:
    cp = control_plane
    worker_view = registered_worker(cp)
    dedicated = worker_view["id"]
    with cp.client() as http:
        assert http.put(f"/api/workers/{dedicated}/lab-track", headers=cp.admin(),
                        json={"lab_track": "ccna"}).status_code == 200
    definition = create_definition(cp, name="no-worker-fits", lab_track="ccnp")
    with cp.client() as http:
        start = datetime.now(UTC)
        created = http.post("/api/lablet-sessions", headers=cp.admin(), json={
            "definition_id": definition["id"], "owner": "student-2", "timeslot_start": start.isoformat(),
            "timeslot_end": (start + timedelta(minutes=30)).isoformat()})
    sid = created.json()["id"]
    pending = wait_for("the scheduler's reason", lambda: (s := session(cp, sid))["last_decision"] and s)
    assert pending["status"] == "pending"
    assert pending["pending_reason"] == f"no eligible worker among 1: worker {worker_view['name']}: other track"
    assert pending["last_decision"]["success"] is False
    assert pending["worker_id"] is None
