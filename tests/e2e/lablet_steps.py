"""What the lablet e2e tests do outside the browser: the sample definition and sessions through the public
API, and the lablet-controller's side of a session.

When the stack's lablet-controller runs sessions (its reconciler is installed), it places them, imports and
boots their labs on the simulated CML and observes them; the tests only wait for it, and make port drift the
way it happens in production: by changing a node's port tag on the (simulated) CML host directly. When the
controller only elects a leader, the tests call the internal API exactly as it would (the stack's
CONTROL_PLANE_API_KEY and the epoch of the lablet-controller's current leader): never the database, never
the page.
"""

from __future__ import annotations

import importlib.util
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lcm_core.testing import sample_topologies
from tests.e2e.stack import LocalStack

CONTROLLER_RUNS_SESSIONS = importlib.util.find_spec("lablet_controller.application.reconciler") is not None
SAMPLE = sample_topologies.DIRECTORY / "ccna-basic.yaml"
NAME = "ccna-basic"
CPA_ONLY_LAB_ID = "lab-e2e-1"


def definition(stack: LocalStack, name: str = NAME) -> dict[str, Any]:
    """The active definition of the sample topology called `name` (the first test creates `NAME` through the
    page; otherwise it is created here through the API)."""
    listed = stack.api("GET", "/api/lablet-definitions").json()["items"]
    found = next((d for d in listed if d["name"] == name), None)
    if found is None:
        answer = stack.api("POST", "/api/lablet-definitions", json={
            "name": name, "lab_topology_yaml": SAMPLE.read_text(), "lab_track": "ccna", "activate": True})
        assert answer.status_code == 201, answer.text
        found = answer.json()
    return found


def create_session(stack: LocalStack, definition_id: str, owner: str = "student-e2e") -> dict[str, Any]:
    start = datetime.now(UTC)
    answer = stack.api("POST", "/api/lablet-sessions", json={
        "definition_id": definition_id, "timeslot_start": start.isoformat(),
        "timeslot_end": (start + timedelta(minutes=60)).isoformat(), "owner": owner})
    assert answer.status_code == 201, answer.text
    return answer.json()


def get_session(stack: LocalStack, session_id: str) -> dict[str, Any]:
    answer = stack.api("GET", f"/api/lablet-sessions/{session_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_status(stack: LocalStack, session_id: str, statuses: set[str], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        session = get_session(stack, session_id)
        if session["status"] in statuses:
            return session
        if time.monotonic() > deadline:
            raise AssertionError(f"session {session_id} is {session['status']}, not {sorted(statuses)}: "
                                 f"{session.get('pending_reason') or session.get('last_error')}")
        time.sleep(0.5)


def internal(stack: LocalStack, session_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = stack.as_lablet_controller("POST", f"/api/internal/lablet-sessions/{session_id}/{action}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def schedule(stack: LocalStack, session_id: str) -> dict[str, Any]:
    """CPA only: place the session on the first worker that may take sessions (running, CML up, healthy or
    degraded), as the controller's pass would."""
    def available(w: dict[str, Any]) -> bool:
        return (w["status"] == "running" and w["service_status"] == "available"
                and w.get("health_status") in ("healthy", "degraded"))

    workers = stack.wait_for_workers(lambda ws: any(available(w) for w in ws), "a running, healthy worker with CML up")
    worker = next(w for w in sorted(workers, key=lambda w: w["name"]) if available(w))
    return internal(stack, session_id, "schedule", {"worker_id": worker["id"], "decision": {
        "success": True, "worker_id": worker["id"], "reason": f"e2e: placed on {worker['name']}",
        "strategy": "best_fit", "candidates_evaluated": 1, "latency_ms": 1.0, "scores": {}}})


def run_to_lab(stack: LocalStack, session_id: str) -> dict[str, Any]:
    """The session with a booted lab: `running` by the controller, or `ready` through the internal API."""
    if CONTROLLER_RUNS_SESSIONS:
        return wait_status(stack, session_id, {"running"})
    schedule(stack, session_id)
    internal(stack, session_id, "transition", {"to": "instantiating", "reason": "e2e: importing the lab"})
    internal(stack, session_id, "mark-ready", {"cml_lab_id": CPA_ONLY_LAB_ID})
    return get_session(stack, session_id)


def move_port_on_cml(stack: LocalStack, session: dict[str, Any], node_label: str, kind: str, port: int) -> None:
    """Edit the live lab on its CML host directly (as someone in CML's web UI would): the node's `kind` tag
    gets another port. Only with a controller that imported the lab there."""
    worker = next(w for w in stack.workers() if w["id"] == session["worker_id"])
    base = stack.env["CML_WORKER_URL_TEMPLATE"].format(instance_id=worker["aws_instance_id"]) + "/api/v0"
    with httpx.Client(base_url=base, timeout=10) as cml:
        token = cml.post("/authenticate", json={"username": stack.env["CML_WORKER_API_USERNAME"],
                                                "password": stack.env["CML_WORKER_API_PASSWORD"]}).json()
        cml.headers["Authorization"] = f"Bearer {token}"
        nodes = cml.get(f"/labs/{session['cml_lab_id']}/nodes", params={"data": "true"}).json()
        node = next(n for n in nodes if n["label"] == node_label)
        tags = [f"{kind}:{port}" if t.startswith(f"{kind}:") else t for t in node["tags"]]
        answer = cml.patch(f"/labs/{session['cml_lab_id']}/nodes/{node['id']}", json={"tags": tags})
        assert answer.status_code == 200, answer.text


def report_observation(stack: LocalStack, session_id: str, observed_ports: dict[str, int]) -> None:
    """CPA only: the observation the controller would post (6 CPUs, 4 GB, 3 nodes) with these ports."""
    internal(stack, session_id, "resource-observations", {
        "observed_at": datetime.now(UTC).isoformat(), "observer": "lablet-controller", "total_cpu_cores": 6,
        "total_memory_mb": 4096, "actual_node_count": 3, "node_definitions_used": ["iosv", "ubuntu"],
        "observed_ports": observed_ports})


def finish_teardown(stack: LocalStack, session_id: str) -> None:
    """CPA only: the lab of a session being terminated is gone; the controller reports `terminated`."""
    if not CONTROLLER_RUNS_SESSIONS:
        internal(stack, session_id, "transition", {"to": "terminated", "reason": "e2e: lab removed"})
