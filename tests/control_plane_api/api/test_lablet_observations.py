"""Resource observation against a real CPA: manual trigger through etcd, observations stored on the session, port drift
by name (kept out of later allocations), the definition flagged for review, aggregation and explicit apply."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.lablet_api import LABLET, create_definition, create_session, ready_workers, schedule_body
from tests.fixtures.sse import SseClient


def _post(cp, path: str, body: dict | None = None, headers=None):
    with cp.client() as http:
        return http.post(path, headers=headers or cp.leader(LABLET), json=body or {})


def _running_session(cp, worker_id: str, definition_id: str) -> dict:
    session = create_session(cp, definition_id)
    base = f"/api/internal/lablet-sessions/{session['id']}"
    scheduled = _post(cp, f"{base}/schedule", schedule_body(worker_id)).json()
    _post(cp, f"{base}/transition", {"to": "instantiating", "reason": "importing"})
    _post(cp, f"{base}/mark-ready", {"cml_lab_id": f"lab-{session['id'][:6]}"})
    assert _post(cp, f"{base}/transition", {"to": "running", "reason": "student in"}).json()["status"] == "running"
    return scheduled


def _observation(ports: dict[str, int], cpu: float = 3, memory_mb: int = 2560, **extra) -> dict:
    nodes = [{"node_id": f"n-{label}", "label": label, "node_definition": "iosv" if label != "PC" else "ubuntu",
              "state": "BOOTED", "cpu_limit": 100, "ram_mb": 768, "compute_id": "c1",
              "tags": [f"{name.split('_')[1]}:{port}" for name, port in ports.items() if name.startswith(label)],
              "interfaces": [{"interface_id": "i0", "label": "GigabitEthernet0/0", "slot": 0, "state": "STARTED",
                              "mac_address": "52:54:00:00:00:01", "ip4": []}]}
             for label in ("R1", "R2", "PC")]
    return {"observed_at": datetime.now(UTC).isoformat(), "observer": "lablet-controller",
            "total_cpu_cores": cpu, "total_memory_mb": memory_mb, "total_storage_mb": None, "nodes": nodes,
            "actual_node_count": 3, "node_definitions_used": ["iosv", "ubuntu"], "observed_ports": ports,
            "simulation_stats": {"nodes": {"n-R1": {"cpu_usage": 12.5}}, "links": {}}, **extra}


def test_manual_observation_drift_review_aggregate_and_apply(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    definition = create_definition(cp)
    waiting = create_session(cp, definition["id"])
    with cp.client() as http:
        assert http.post(f"/api/lablet-sessions/{waiting['id']}/observe-resources",
                         headers=cp.admin()).status_code == 409  # nothing runs yet
    assert _post(cp, f"/api/internal/lablet-sessions/{waiting['id']}/resource-observations",
                 _observation({})).status_code == 409
    session = _running_session(cp, worker_id, definition["id"])
    sid, ports = session["id"], session["allocated_ports"]
    with cp.client() as http:
        asked = http.post(f"/api/lablet-sessions/{sid}/observe-resources", headers=cp.admin())
        assert asked.status_code == 202
        again = http.post(f"/api/lablet-sessions/{sid}/observe-resources", headers=cp.admin())
    request_id = asked.json()["request_id"]
    assert again.json()["request_id"] == request_id
    key = cp.etcd_json(f"sessions/{sid}/observe_resources")
    assert (key["session_id"], key["request_id"], key["requested_by"]) == (sid, request_id, "test-admin")
    assert cp.etcd_json(f"sessions/{sid}/state")["status"] == "running"

    with SseClient(f"{cp.url}/api/events/stream", cp.viewer(), params={"event_types": "lablet.*"}) as sse:
        sse.next()  # snapshot
        clean = _post(cp, f"/api/internal/lablet-sessions/{sid}/resource-observations",
                      _observation(ports, observer="manual", request_id=request_id))
        assert clean.status_code == 200, clean.text
        assert clean.json()["observe_requested"] is False
        assert cp.etcd_json(f"sessions/{sid}/observe_resources") is None
        drifted = {**ports, "PC_serial": 5000, "R3_serial": 5001}  # edited on CML directly
        del drifted["R2_serial"]
        assert _post(cp, f"/api/internal/lablet-sessions/{sid}/resource-observations",
                     _observation(drifted, cpu=6, memory_mb=8192)).status_code == 200
        frames = sse.drain(quiet=1.0)
    kinds = [f.event for f in frames]
    assert kinds.count("lablet.session.resources.observed") == 2
    drift_event = next(f for f in frames if f.event == "lablet.session.port_drift.detected").data["data"]
    assert drift_event["changed"] == {"PC_serial": {"allocated": ports["PC_serial"], "observed": 5000}}
    assert drift_event["missing"] == {"R2_serial": ports["R2_serial"]}
    assert drift_event["unexpected"] == {"R3_serial": 5001}
    assert "lablet.definition.review_flagged" in kinds

    with cp.client() as http:
        stored = http.get(f"/api/lablet-sessions/{sid}", headers=cp.viewer()).json()
        assert (stored["observation_count"], stored["port_drift_detected"]) == (2, True)
        assert stored["observed_ports"] == drifted
        assert stored["observed_resources"]["nodes"][0]["interfaces"][0]["label"] == "GigabitEthernet0/0"
        assert "compute_id" not in stored["observed_resources"]["nodes"][0]
        flagged = http.get(f"/api/lablet-definitions/{definition['id']}", headers=cp.viewer()).json()
        assert flagged["observation_review"] is True
        assert "cpu_cores observed 6.00, declared 3" in flagged["review_reason"]
        capacity = http.get(f"/api/internal/workers/{worker_id}", headers=cp.internal()).json()["capacity"]
        assert capacity["reservations"][sid]["drifted_ports"] == {"PC_serial": 5000, "R3_serial": 5001}
    # The drifted ports are in use on the worker: the next session there does not get them.
    second = create_session(cp, definition["id"])
    placed = _post(cp, f"/api/internal/lablet-sessions/{second['id']}/schedule", schedule_body(worker_id)).json()
    assert not {5000, 5001} & set(placed["allocated_ports"].values())
    assert not set(ports.values()) & set(placed["allocated_ports"].values())

    # A completed session's observations are aggregated; an admin applies chosen values explicitly.
    for status in ("collecting", "stopping", "stopped"):
        _post(cp, f"/api/internal/lablet-sessions/{sid}/transition", {"to": status, "reason": "timeslot over"})
    with cp.client() as http:
        path = f"/api/lablet-definitions/{definition['id']}"
        summary = http.get(f"{path}/resource-observations", headers=cp.viewer()).json()
        assert summary["sessions_observed"] == 1
        assert summary["cpu_cores"] == {"max": 6.0, "avg": 6.0, "latest": 6.0}
        assert summary["memory_gb"]["latest"] == 8.0
        assert summary["port_drift_sessions"] == 1
        assert summary["declared"]["cpu_cores"] == 3
        assert http.post(f"{path}/apply-observations", headers=cp.admin(), json={"version": 1}).status_code == 422
        assert http.post(f"{path}/apply-observations", headers=cp.viewer(),
                         json={"version": 1, "cpu_cores": 6}).status_code == 403
        assert http.post(f"{path}/apply-observations", headers=cp.admin(),
                         json={"version": 5, "cpu_cores": 6}).status_code == 409
        applied = http.post(f"{path}/apply-observations", headers=cp.admin(),
                            json={"version": 1, "cpu_cores": 6, "memory_gb": 8}).json()
    assert applied["version"] == 2
    assert applied["observation_review"] is False
    assert applied["resource_requirements"] == {"cpu_cores": 6, "memory_gb": 8, "storage_gb": 10, "node_count": 3}


def test_posting_the_same_observation_twice_counts_once(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    session = _running_session(cp, worker_id, create_definition(cp)["id"])
    body = _observation(session["allocated_ports"])
    path = f"/api/internal/lablet-sessions/{session['id']}/resource-observations"
    assert _post(cp, path, body).json()["id"] == session["id"]
    assert _post(cp, path, body).status_code == 200
    with cp.client() as http:
        stored = http.get(f"/api/lablet-sessions/{session['id']}", headers=cp.viewer()).json()
    assert (stored["observation_count"], stored["port_drift_detected"]) == (1, False)
