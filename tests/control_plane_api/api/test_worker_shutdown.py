"""Session-safe stop and drain, truthful status reports, licence hygiene at termination and duplicate launches,
against a real CPA (MongoDB-wire, Redis, etcd)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures.control_plane import discovered
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, ready_workers, schedule_body
from tests.fixtures.metrics import post_reports, report
from tests.fixtures.sse import SseClient


def _worker(cp, worker_id: str) -> dict[str, Any]:
    with cp.client() as http:
        return http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()


def _admin(cp, path: str, body: dict | None = None, **params: Any):
    with cp.client() as http:
        return http.post(path, headers=cp.admin(), json=body, params=params)


def _sessions_on(cp, worker_id: str, count: int) -> list[str]:
    definition = create_definition(cp)
    ids = []
    with cp.client() as http:
        for _ in range(count):
            session = create_session(cp, definition["id"])
            answer = http.post(f"/api/internal/lablet-sessions/{session['id']}/schedule", headers=cp.leader(LABLET),
                               json=schedule_body(worker_id))
            assert answer.status_code == 200, answer.text
            ids.append(session["id"])
    return ids


def _end(cp, session_id: str) -> None:
    """The lablet-controller's side of ending a session: its lab is gone, so it is terminated."""
    with cp.client() as http:
        answer = http.post(f"/api/internal/lablet-sessions/{session_id}/transition", headers=cp.leader(LABLET),
                           json={"to": "terminated", "reason": "lab removed"})
        assert answer.status_code == 200, answer.text


def test_stop_and_terminate_of_a_worker_with_sessions_are_refused_naming_them(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    sessions = _sessions_on(cp, worker_id, 2)
    for action in ("stop", "terminate"):
        answer = _admin(cp, f"/api/workers/{worker_id}/{action}")
        assert answer.status_code == 409, answer.text
        message = answer.json()["detail"] if isinstance(answer.json()["detail"], str) else answer.text
        assert all(s in message for s in sessions), message
    worker = _worker(cp, worker_id)
    assert worker["desired_status"] is None
    assert worker["sessions"] == 2


def test_drain_takes_no_new_session_and_stops_the_worker_after_its_last_session(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    [held] = _sessions_on(cp, worker_id, 1)
    with SseClient(f"{cp.url}/api/events/stream", cp.viewer(), params={"event_types": "worker.*"}) as sse:
        drained = _admin(cp, f"/api/workers/{worker_id}/drain", {"then": "stopped", "reason": "maintenance"})
        assert drained.status_code == 200, drained.text
        assert (drained.json()["status"], drained.json()["phase"]) == ("draining", "DRAINING")
        assert drained.json()["drain"]["then"] == "stopped"
        assert drained.json()["desired_status"] is None  # a session is still on it

        # No new placement on a draining worker.
        late = create_session(cp, create_definition(cp, name="late-one")["id"])
        with cp.client() as http:
            refused = http.post(f"/api/internal/lablet-sessions/{late['id']}/schedule", headers=cp.leader(LABLET),
                                json=schedule_body(worker_id))
        assert refused.status_code == 409, refused.text
        # A metrics cycle that sees the instance running keeps it draining.
        with cp.client() as http:
            post_reports(cp, http, report(worker_id, ec2={"state": "running"}))
        assert _worker(cp, worker_id)["status"] == "draining"

        _end(cp, held)
        worker = _worker(cp, worker_id)
        assert worker["sessions"] == 0
        assert worker["desired_status"] == "stopped"
        assert worker["drain"]["completed_at"] is not None
        seen = [f.event for f in sse.drain() if (f.data.get("data") or {}).get("worker_id") == worker_id]
        assert seen.index("worker.draining") < seen.index("worker.drained") < seen.index(
            "worker.desired_status.changed")
        assert cp.etcd_json(f"workers/{worker_id}/desired_state")["desired_status"] == "stopped"
    # The instance stopping ends the drain.
    with cp.client() as http:
        http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                  json={"ec2_state": "stopped"}).raise_for_status()
    worker = _worker(cp, worker_id)
    assert (worker["status"], worker["drain"]) == ("stopped", None)


def test_undrain_takes_sessions_again_and_drain_to_running_stays_up(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    [held] = _sessions_on(cp, worker_id, 1)
    assert _admin(cp, f"/api/workers/{worker_id}/drain", {"then": "running"}).json()["status"] == "draining"
    _end(cp, held)
    worker = _worker(cp, worker_id)
    assert (worker["status"], worker["desired_status"]) == ("draining", None)  # drained, kept running
    undrained = _admin(cp, f"/api/workers/{worker_id}/undrain")
    assert undrained.status_code == 200, undrained.text
    assert (undrained.json()["status"], undrained.json()["drain"]) == ("running", None)
    _sessions_on(cp, worker_id, 1)  # placement works again


def test_drain_of_an_idle_worker_stops_it_at_once_and_cannot_be_undone(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    answer = _admin(cp, f"/api/workers/{worker_id}/drain", {"then": "terminated"})
    assert answer.json()["desired_status"] == "terminated"
    assert _admin(cp, f"/api/workers/{worker_id}/undrain").status_code == 409
    stopped = _admin(cp, f"/api/workers/{ready_workers(cp, 1, first=2)[0]}/drain")
    assert stopped.json()["desired_status"] == "stopped"  # the default end state


def test_forced_stop_ends_the_sessions_properly_then_stops(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    sessions = _sessions_on(cp, worker_id, 2)
    with cp.client() as http:  # one of them has a lab on CML, the other is only scheduled
        http.post(f"/api/internal/lablet-sessions/{sessions[0]}/transition", headers=cp.leader(LABLET),
                  json={"to": "instantiating", "reason": "lab imported"}).raise_for_status()
    forced = _admin(cp, f"/api/workers/{worker_id}/stop", force="true")
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "draining"
    with cp.client() as http:
        states = {s: http.get(f"/api/lablet-sessions/{s}", headers=cp.viewer()).json() for s in sessions}
    # The one with a lab is torn down by the lablet-controller (stopping, terminate requested) ...
    assert states[sessions[0]]["status"] == "stopping"
    assert states[sessions[0]]["terminate_requested"] is True
    # ... the other had nothing on CML: it ended at once and gave its capacity back.
    assert states[sessions[1]]["status"] == "terminated"
    worker = _worker(cp, worker_id)
    assert (worker["sessions"], worker["desired_status"]) == (1, None)
    _end(cp, sessions[0])
    assert _worker(cp, worker_id)["desired_status"] == "stopped"


def test_a_status_report_observed_before_the_last_change_is_ignored(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                  json={"ec2_state": "stopped", "observed_at": datetime.now(UTC).isoformat()}).raise_for_status()
        earlier = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
        # EC2 said running half a minute ago, before the worker was seen stopped: not the truth any more.
        stale = http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                          json={"ec2_state": "running", "observed_at": earlier})
        assert stale.status_code == 200
        assert stale.json()["status"] == "stopped"
        _admin(cp, f"/api/workers/{worker_id}/start").raise_for_status()
        before_start = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        ignored = http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                            json={"ec2_state": "stopped", "observed_at": before_start,
                                  "reason": "read before the start was asked for"})
        assert ignored.status_code == 200, ignored.text
        assert ignored.json()["status"] == "stopped"
        assert _worker(cp, worker_id)["state_history"][-1]["field"] == "desired_status"
        fresh = http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                          json={"ec2_state": "pending", "observed_at": datetime.now(UTC).isoformat()})
        assert fresh.json()["status"] == "starting"


def test_idle_auto_pause_never_stops_a_worker_that_holds_a_session(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    _sessions_on(cp, worker_id, 1)
    with cp.client() as http:
        current = http.get("/api/settings", headers=cp.admin()).json()
        http.put("/api/settings", headers=cp.admin(), json={"version": current["version"], "idle": {
            "enabled": True, "threshold_minutes": 0.05, "snooze_minutes_after_resume": 0, "auto_pause": True}}
        ).raise_for_status()
        time.sleep(3.5)  # idle (no running node) for longer than the threshold: only the session keeps it up
        outcome = post_reports(cp, http, report(worker_id, cml={"running_nodes": 0}))
    assert outcome["auto_paused"] == []
    worker = _worker(cp, worker_id)
    assert worker["desired_status"] is None
    assert worker["telemetry"]["idle"]["eligible_for_auto_pause"] is False
    assert "session" in worker["telemetry"]["idle"]["verdict"]


def test_a_terminated_worker_never_shows_registered(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        post_reports(cp, http, report(worker_id, cml={"license": {
            "registration_status": "COMPLETED", "authorization_status": "IN_COMPLIANCE", "node_limit": 520}}))
        assert _worker(cp, worker_id)["license"]["status"] == "registered"
        http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                  json={"ec2_state": "terminated", "reason": "terminated in EC2"}).raise_for_status()
    licence = _worker(cp, worker_id)["license"]
    assert licence["status"] == "unregistered"
    assert "Smart Software Manager" in licence["last_error"]


def test_a_duplicate_launch_is_imported_flagged_and_does_not_wedge_the_region(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        template = {"name": "dup-metal", "instance_type": "m5zn.metal", "ami_name_pattern": "CML-*",
                    "regions": {"us-east-1": {}}, "capacity": {"cpu_cores": 48, "memory_gb": 192,
                                                               "storage_gb": 300, "max_nodes": 100}}
        assert http.post("/api/templates", headers=cp.admin(), json=template).status_code == 201
        created = http.post("/api/workers", headers=cp.admin(),
                            json={"template_name": "dup-metal", "aws_region": "us-east-1"}).json()
        tag = {"lcm:worker-id": created["id"]}
        first, second = discovered(71, tags=tag), discovered(72, tags=tag)
        http.post(f"/api/internal/workers/{created['id']}/provisioned", headers=cp.leader(),
                  json=first).raise_for_status()
        imported = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                             json={"instances": [first, second, discovered(73)]})
        assert imported.status_code == 200, imported.text
        again = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                          json={"instances": [first, second, discovered(73)]})
        assert again.status_code == 200, again.text
        by_instance = {w["aws_instance_id"]: w for w in http.get(
            "/api/workers", headers=cp.viewer(), params={"limit": 1000}).json()["items"]}
    assert by_instance[first["aws_instance_id"]]["id"] == created["id"]
    duplicate = by_instance[second["aws_instance_id"]]
    assert duplicate["id"] != created["id"]
    assert "duplicate launch" in duplicate["instance_conflict"]
    assert second["aws_instance_id"] in _worker(cp, created["id"])["instance_conflict"]
    assert discovered(73)["aws_instance_id"] in by_instance  # the rest of the region is imported
