"""Lablet sessions against a real CPA (MongoDB-wire, Redis, etcd): schedule with capacity and ports,
the transition table, release exactly once, terminate, expiry, the leader fence, SSE events."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from lcm_core.domain.lablets import DefinitionWorkView, SessionStateKey, SessionWorkView
from tests.fixtures.lablet_api import (
    LABLET,
    create_definition,
    create_session,
    ready_workers,
    report_cml_health,
    schedule_body,
)
from tests.fixtures.mongo import mongo_client
from tests.fixtures.sse import SseClient


def _post(cp, path: str, body: dict | None = None, headers=None):
    with cp.client() as http:
        return http.post(path, headers=headers or cp.leader(LABLET), json=body or {})


def _move(cp, session_id: str, to: str, reason: str = "test"):
    return _post(cp, f"/api/internal/lablet-sessions/{session_id}/transition", {"to": to, "reason": reason})


def _worker(cp, worker_id: str) -> dict:
    with cp.client() as http:
        return http.get(f"/api/internal/workers/{worker_id}", headers=cp.internal()).json()


def _session(cp, session_id: str) -> dict:
    with cp.client() as http:
        return http.get(f"/api/lablet-sessions/{session_id}", headers=cp.viewer()).json()


def test_session_walks_the_lifecycle_and_gives_capacity_back(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    before = _worker(cp, worker_id)["capacity"]
    definition = create_definition(cp)
    session = create_session(cp, definition["id"], owner="student-1")
    assert (session["status"], session["definition_version"], session["owner"]) == ("pending", 1, "student-1")
    with cp.client() as http:
        pending = http.get("/api/internal/lablet-sessions", headers=cp.internal(), params={"status": "pending"}).json()
    assert [s["id"] for s in pending["items"]] == [session["id"]]
    assert pending["items"][0]["resource_requirements"] == definition["resource_requirements"]

    scheduled = _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
    assert scheduled.status_code == 200, scheduled.text
    ports = scheduled.json()["allocated_ports"]
    assert ports == {"R1_serial": 5041, "R2_serial": 5042, "PC_serial": 5043, "PC_vnc": 5044}
    again = _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
    assert again.status_code == 200
    assert again.json()["allocated_ports"] == ports
    capacity = _worker(cp, worker_id)["capacity"]
    assert capacity["allocated"] == {"cpu_cores": 3, "memory_gb": 2.5, "storage_gb": 10, "max_nodes": 3}
    assert capacity["port_allocations"] == {session["id"]: ports}
    assert capacity["session_ids"] == [session["id"]]
    state = cp.etcd_json(f"sessions/{session['id']}/state")
    assert (state["status"], state["worker_id"]) == ("scheduled", worker_id)

    assert _move(cp, session["id"], "running").status_code == 409  # not from scheduled
    assert _move(cp, session["id"], "instantiating").json()["status"] == "instantiating"
    assert _move(cp, session["id"], "ready").status_code == 409  # only through mark-ready
    ready = _post(cp, f"/api/internal/lablet-sessions/{session['id']}/mark-ready", {"cml_lab_id": "lab-1"})
    assert (ready.json()["status"], ready.json()["cml_lab_id"]) == ("ready", "lab-1")
    assert _post(cp, f"/api/internal/lablet-sessions/{session['id']}/mark-ready",
                 {"cml_lab_id": "lab-1"}).status_code == 200  # idempotent
    for status in ("running", "collecting", "stopping"):
        assert _move(cp, session["id"], status).json()["status"] == status
    assert _worker(cp, worker_id)["capacity"]["allocated"]["cpu_cores"] == 3  # still held while stopping
    stopped = _move(cp, session["id"], "stopped", "lab stopped, wiped and deleted")
    assert stopped.json()["status"] == "stopped"
    assert _move(cp, session["id"], "stopped").status_code == 200  # idempotent, released once
    after = _worker(cp, worker_id)["capacity"]
    assert after["allocated"] == before["allocated"]
    assert after["port_allocations"] == {}
    assert after["session_ids"] == []
    assert _move(cp, session["id"], "running").status_code == 409
    assert _move(cp, session["id"], "archived").json()["status"] == "archived"
    history = [(h["from"], h["to"]) for h in _session(cp, session["id"])["state_history"]]
    assert history[-2:] == [("stopping", "stopped"), ("stopped", "archived")]


def test_a_port_is_not_given_twice_and_capacity_is_enforced(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    big = create_definition(cp, "big", resource_requirements={"cpu_cores": 20, "memory_gb": 64,
                                                              "storage_gb": 100, "node_count": 4})
    first, second, third = (create_session(cp, big["id"]) for _ in range(3))
    one = _post(cp, f"/api/internal/lablet-sessions/{first['id']}/schedule", schedule_body(worker_id)).json()
    two = _post(cp, f"/api/internal/lablet-sessions/{second['id']}/schedule", schedule_body(worker_id)).json()
    assert not set(one["allocated_ports"].values()) & set(two["allocated_ports"].values())
    assert set(two["allocated_ports"].values()) == {5000, 5001, 5002, 5003}  # template ports taken: lowest free
    refused = _post(cp, f"/api/internal/lablet-sessions/{third['id']}/schedule", schedule_body(worker_id))
    assert refused.status_code == 409
    assert "lacks capacity: cpu_cores needs 20, 8 free of 48" in refused.json()["detail"]
    assert _session(cp, third["id"])["status"] == "pending"
    assert _worker(cp, worker_id)["capacity"]["allocated"]["cpu_cores"] == 40


def test_a_worker_whose_cml_is_unreachable_is_refused_with_409_and_keeps_no_reservation(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        sick = report_cml_health(cp, http, worker_id, reachable=False)
    # What the scheduler saw: EC2 running and CML "available", yet the CML API does not answer.
    assert (sick["status"], sick["service_status"], sick["health_status"]) == ("running", "available", "unreachable")
    session = create_session(cp, create_definition(cp)["id"])
    refused = _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(f"worker {worker_id} cannot take sessions: health unreachable")
    assert _session(cp, session["id"])["status"] == "pending"
    assert _worker(cp, worker_id)["capacity"]["session_ids"] == []
    with cp.client() as http:
        report_cml_health(cp, http, worker_id)  # CML answers again: the same session is placed
    placed = _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
    assert (placed.status_code, placed.json()["worker_id"]) == (200, worker_id)


def test_internal_views_are_the_shared_contract(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    definition = create_definition(cp)
    session = create_session(cp, definition["id"])
    _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
    with cp.client() as http:
        listed = http.get("/api/internal/lablet-sessions", headers=cp.internal(),
                          params={"status": "pending,scheduled"}).json()
        one = http.get(f"/api/internal/lablet-sessions/{session['id']}", headers=cp.internal()).json()
        version = http.get(f"/api/internal/lablet-definitions/{definition['id']}", headers=cp.internal(),
                           params={"version": 1}).json()
        assert http.get("/api/internal/lablet-sessions", headers=cp.internal(),
                        params={"status": "sleeping"}).status_code == 422
        assert http.get("/api/internal/lablet-sessions/nope", headers=cp.internal()).status_code == 404
    view = SessionWorkView.model_validate(one)
    assert listed["total"] == 1
    assert SessionWorkView.model_validate(listed["items"][0]) == view
    assert (view.status, view.worker_id, view.lab_track) == ("scheduled", worker_id, "ccna")
    assert set(one) == set(SessionWorkView.model_fields)
    work = DefinitionWorkView.model_validate(version)
    assert [p.name for p in work.port_template] == list(view.allocated_ports)
    assert work.lab_topology_yaml.startswith("lab:")
    key = SessionStateKey.model_validate(cp.etcd_json(f"sessions/{session['id']}/state"))
    assert (key.status, key.version) == ("scheduled", view.version)


def test_unschedule_releases_and_the_session_can_be_placed_again(control_plane) -> None:
    cp = control_plane
    first, second = ready_workers(cp, 2)
    session = create_session(cp, create_definition(cp)["id"])
    path = f"/api/internal/lablet-sessions/{session['id']}"
    _post(cp, f"{path}/schedule", schedule_body(first))
    back = _move(cp, session["id"], "pending", "worker unreachable before import")
    assert (back.json()["status"], back.json()["worker_id"], back.json()["allocated_ports"]) == ("pending", None, {})
    assert _worker(cp, first)["capacity"]["session_ids"] == []
    again = _post(cp, f"{path}/schedule", schedule_body(second)).json()
    assert (again["status"], again["worker_id"]) == ("scheduled", second)
    assert _worker(cp, second)["capacity"]["port_allocations"] == {session["id"]: again["allocated_ports"]}


def test_no_candidate_keeps_the_session_pending_with_the_reason(control_plane) -> None:
    cp = control_plane
    session = create_session(cp, create_definition(cp)["id"])
    answer = _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule",
                   schedule_body(None, "no worker on track ccna has 3 free cores"))
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["pending_reason"]) == (
        "pending", "no worker on track ccna has 3 free cores")
    assert _session(cp, session["id"])["last_decision"]["success"] is False


def test_only_the_current_lablet_controller_leader_may_mutate(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    session = create_session(cp, create_definition(cp)["id"])
    path = f"/api/internal/lablet-sessions/{session['id']}/schedule"
    assert _post(cp, path, schedule_body(worker_id), headers=cp.leader("worker-controller")).status_code == 409
    assert _post(cp, path, schedule_body(worker_id), headers=cp.internal()).status_code == 409
    epoch = cp.epochs.get(LABLET) or int(cp.leader(LABLET)["X-LCM-Leader-Epoch"])
    cp.depose(LABLET)
    stale = _post(cp, path, schedule_body(worker_id), headers=cp.internal(epoch))
    assert stale.status_code == 409
    assert "stale" in stale.json()["detail"]
    assert _post(cp, path, schedule_body(worker_id)).status_code == 200  # a new leader


def test_bad_bodies_are_refused_with_422(control_plane) -> None:
    cp = control_plane
    session = create_session(cp, create_definition(cp)["id"])
    base = f"/api/internal/lablet-sessions/{session['id']}"
    assert _post(cp, f"{base}/transition", {"to": "flying", "reason": "x"}).status_code == 422
    assert _post(cp, f"{base}/transition", {"to": "running"}).status_code == 422
    bad = _post(cp, f"{base}/schedule", {"worker_id": "w", "decision": {"success": True}})
    assert bad.status_code == 422
    assert "reason" in bad.text
    assert _post(cp, f"{base}/resource-observations", {"observer": "x"}).status_code == 422


def test_terminate_without_and_with_a_lab(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    definition = create_definition(cp)
    pending, scheduled, running = (create_session(cp, definition["id"]) for _ in range(3))
    for s in (scheduled, running):
        _post(cp, f"/api/internal/lablet-sessions/{s['id']}/schedule", schedule_body(worker_id))
    _move(cp, running["id"], "instantiating")
    _post(cp, f"/api/internal/lablet-sessions/{running['id']}/mark-ready", {"cml_lab_id": "lab-9"})
    _move(cp, running["id"], "running")
    with cp.client() as http:
        for s in (pending, scheduled, running):
            assert http.post(f"/api/lablet-sessions/{s['id']}/terminate", headers=cp.viewer()).status_code == 403
            answer = http.post(f"/api/lablet-sessions/{s['id']}/terminate", headers=cp.admin(),
                               json={"reason": "course cancelled"})
            assert answer.status_code == 200, answer.text
    assert _session(cp, pending["id"])["status"] == "terminated"
    assert _session(cp, scheduled["id"])["status"] == "terminated"
    lab = _session(cp, running["id"])
    assert (lab["status"], lab["terminate_requested"]) == ("stopping", True)
    assert cp.etcd_json(f"sessions/{running['id']}/state")["terminate_requested"] is True
    assert _worker(cp, worker_id)["capacity"]["session_ids"] == [running["id"]]
    assert _move(cp, running["id"], "terminated", "lab deleted").json()["status"] == "terminated"
    assert _worker(cp, worker_id)["capacity"]["allocated"]["cpu_cores"] == 0
    # A terminal session leaves nothing in etcd: no key per session ever run.
    for s in (pending, scheduled, running):
        assert cp.etcd_json(f"sessions/{s['id']}/state") is None


def test_overdue_sessions_expire_and_release(control_plane_factory) -> None:
    cp = control_plane_factory(LABLET_EXPIRY_SWEEP_SECONDS=0.3)
    [worker_id] = ready_workers(cp, 1)
    definition = create_definition(cp)
    end = datetime.now(UTC) + timedelta(seconds=2)
    slot = {"timeslot_start": (end - timedelta(minutes=5)).isoformat(), "timeslot_end": end.isoformat()}
    waiting, placed = (create_session(cp, definition["id"], **slot) for _ in range(2))
    _post(cp, f"/api/internal/lablet-sessions/{placed['id']}/schedule", schedule_body(worker_id))
    assert _worker(cp, worker_id)["capacity"]["allocated"]["cpu_cores"] == 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and {_session(cp, s["id"])["status"] for s in (waiting, placed)} != {"expired"}:
        time.sleep(0.3)
    assert _session(cp, waiting["id"])["status"] == "expired"
    assert _session(cp, placed["id"])["status"] == "expired"
    assert _worker(cp, worker_id)["capacity"]["allocated"]["cpu_cores"] == 0
    past = {"timeslot_start": (end - timedelta(hours=2)).isoformat(),
            "timeslot_end": (end - timedelta(hours=1)).isoformat()}
    with cp.client() as http:
        refused = http.post("/api/lablet-sessions", headers=cp.admin(),
                            json={"definition_id": definition["id"], **past})
    assert refused.status_code == 422
    assert "already over" in refused.text


def test_session_events_reach_the_event_stream(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    definition = create_definition(cp)
    with SseClient(f"{cp.url}/api/events/stream", cp.viewer(), params={"event_types": "lablet.*"}) as sse:
        assert sse.frame().event == "worker.snapshot"
        session = create_session(cp, definition["id"])
        _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
        frames = sse.drain(quiet=1.0)
    kinds = [f.event for f in frames]
    assert kinds[:3] == ["lablet.session.created", "lablet.session.status.changed", "lablet.session.scheduled"]
    assert frames[2].data["data"]["allocated_ports"]["PC_vnc"] == 5044


def test_a_reservation_left_by_a_crash_is_released_by_the_sweep(control_plane_factory, mongo_server) -> None:
    cp = control_plane_factory(LABLET_EXPIRY_SWEEP_SECONDS=0.3, LABLET_ORPHAN_GRACE_SECONDS=1)
    [worker_id] = ready_workers(cp, 1)
    session = create_session(cp, create_definition(cp)["id"])
    _post(cp, f"/api/internal/lablet-sessions/{session['id']}/schedule", schedule_body(worker_id))
    # A CPA that died between the worker write and the session write left a reservation behind.
    with mongo_client(mongo_server, tz_aware=True) as mongo:
        workers = mongo[cp.settings.mongodb_database]["workers"]
        doc = workers.find_one({"_id": worker_id})
        assert doc is not None, f"worker {worker_id} is not stored"
        capacity = doc["capacity"]
        capacity["reservations"]["ghost"] = {
            "cpu_cores": 5, "memory_gb": 1, "storage_gb": 1, "node_count": 1, "ports": {"PC_serial": 5100},
            "drifted_ports": {}, "reserved_at": datetime.now(UTC) - timedelta(hours=1), "session_version": 1}
        capacity["allocated"]["cpu_cores"] += 5
        capacity["session_ids"].append("ghost")
        capacity["port_allocations"]["ghost"] = {"PC_serial": 5100}
        injected = workers.replace_one({"_id": worker_id, "version": doc["version"]},
                                       {**doc, "version": doc["version"] + 1})
    # Checked on the write itself: reading it back through the API races the sweep (every 0.3 s here).
    assert injected.modified_count == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "ghost" in _worker(cp, worker_id)["capacity"]["reservations"]:
        time.sleep(0.3)
    capacity = _worker(cp, worker_id)["capacity"]
    assert capacity["session_ids"] == [session["id"]]  # the session that holds it is left alone
    assert capacity["allocated"]["cpu_cores"] == 3


def test_an_unknown_status_filter_is_a_422_naming_the_known_ones(control_plane) -> None:
    with control_plane.client() as http:
        for path, what, known in (("/api/lablet-sessions", "session status", "running"),
                                  ("/api/lablet-definitions", "definition status", "active")):
            answer = http.get(path, headers=control_plane.viewer(), params={"status": f"{known},bogus"})
            assert answer.status_code == 422, answer.text
            assert f"unknown {what} 'bogus'" in answer.text
        assert http.get("/api/lablet-sessions", headers=control_plane.viewer(),
                        params={"status": "pending,running"}).status_code == 200
