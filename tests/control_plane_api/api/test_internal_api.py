"""The internal API against real MongoDB-wire, Redis and etcd: idempotent import, no lost update under
concurrency, the leader-epoch fence, status/metrics/idle semantics and the etcd projection."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx

from tests.fixtures.control_plane import discovered
from tests.fixtures.metrics import BATCH, post_report, post_reports, report


def _import(cp, *instances, headers=None):
    with cp.client() as http:
        response = http.post("/api/internal/workers/bulk-import", headers=headers or cp.leader(),
                             json={"instances": list(instances)})
    assert response.status_code == 200, response.text
    return response.json()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def test_bulk_import_twice_gives_one_worker(control_plane) -> None:
    first = _import(control_plane, discovered(1), discovered(2, "us-west-2", "stopped"))
    second = _import(control_plane, discovered(1), discovered(2, "us-west-2", "stopped"))
    assert len(first["created"]) == 2
    assert second["created"] == []
    assert sorted(second["unchanged"]) == sorted(first["created"])
    with control_plane.client() as http:
        page = http.get("/api/workers", headers=control_plane.viewer()).json()
    assert page["total"] == 2
    by_instance = {w["aws_instance_id"]: w for w in page["items"]}
    assert by_instance[discovered(1)["aws_instance_id"]]["status"] == "running"
    assert by_instance[discovered(2)["aws_instance_id"]]["status"] == "stopped"
    assert by_instance[discovered(1)["aws_instance_id"]]["capacity"]["declared"]["cpu_cores"] == 48


def test_concurrent_bulk_imports_of_the_same_instance_create_it_once(control_plane) -> None:
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=control_plane.url, timeout=10) as http:
            return await asyncio.gather(*(
                http.post("/api/internal/workers/bulk-import", headers=control_plane.leader(),
                          json={"instances": [discovered(7)]}) for _ in range(8)))

    control_plane.leader()  # campaign outside the event loop
    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sum(len(r.json()["created"]) for r in responses) == 1
    with control_plane.client() as http:
        assert http.get("/api/workers", headers=control_plane.viewer()).json()["total"] == 1


def test_a_re_import_writes_only_the_workers_that_changed(control_plane) -> None:
    created = _import(control_plane, discovered(11), discovered(12), discovered(13))["created"]
    again = _import(control_plane, discovered(11), discovered(12, state="stopped"),
                    discovered(13, private_ip="10.9.9.9"))
    assert again["created"] == []
    by_instance = dict(zip([discovered(n)["aws_instance_id"] for n in (11, 12, 13)], created, strict=True))
    assert again["unchanged"] == [by_instance[discovered(11)["aws_instance_id"]]]
    assert sorted(again["updated"]) == sorted([by_instance[discovered(12)["aws_instance_id"]],
                                               by_instance[discovered(13)["aws_instance_id"]]])
    with control_plane.client() as http:
        items = {w["aws_instance_id"]: w for w in
                 http.get("/api/workers", headers=control_plane.viewer()).json()["items"]}
    assert items[discovered(12)["aws_instance_id"]]["status"] == "stopped"
    assert items[discovered(13)["aws_instance_id"]]["private_ip"] == "10.9.9.9"
    assert items[discovered(11)["aws_instance_id"]]["version"] == 1  # unchanged: not written at all


def test_concurrent_re_imports_record_one_transition(control_plane) -> None:
    _import(control_plane, discovered(14))

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=control_plane.url, timeout=10) as http:
            return await asyncio.gather(*(
                http.post("/api/internal/workers/bulk-import", headers=control_plane.leader(),
                          json={"instances": [discovered(14, state="stopped")]}) for _ in range(6)))

    control_plane.leader()  # campaign outside the event loop
    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    with control_plane.client() as http:
        row = next(w for w in http.get("/api/workers", headers=control_plane.viewer()).json()["items"]
                   if w["aws_instance_id"] == discovered(14)["aws_instance_id"])
        worker = http.get(f"/api/workers/{row['id']}", headers=control_plane.viewer()).json()
    assert row["status"] == worker["status"] == "stopped"
    stops = [h for h in worker["state_history"] if h.get("field", "status") == "status" and h["to"] == "stopped"]
    assert len(stops) == 1  # a lost race re-reads and finds nothing left to do


def test_two_concurrent_metric_updates_lose_no_field(control_plane) -> None:
    worker_id = _import(control_plane, discovered(3))["created"][0]
    headers = control_plane.leader()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=control_plane.url, timeout=20) as http:
            for round_ in range(10):
                ec2 = report(worker_id, ec2={"state": "running", "system_status": "ok",
                                             "instance_status": f"ok-{round_}"})
                cw = report(worker_id, cloudwatch={"cpu_utilization": float(round_),
                                                   "network_in_bytes": 1000.0 + round_})
                a, b = await asyncio.gather(http.post(BATCH, headers=headers, json={"reports": [ec2]}),
                                            http.post(BATCH, headers=headers, json={"reports": [cw]}))
                assert a.status_code == 200, a.text
                assert b.status_code == 200, b.text
                assert a.json()["updated"] == b.json()["updated"] == [worker_id]
                stored = (await http.get(f"/api/internal/workers/{worker_id}", headers=headers)).json()
                telemetry = stored["telemetry"]
                assert telemetry["ec2"] is not None, f"round {round_}: the EC2 checks were lost"
                assert telemetry["cloudwatch"] is not None, f"round {round_}: the CloudWatch sample was lost"
                assert telemetry["ec2"]["instance_status"] == f"ok-{round_}"
                assert telemetry["cloudwatch"]["cpu_utilization"] == float(round_)

    asyncio.run(run())


def test_metrics_batch_updates_many_workers_and_reports_unknown_ids(control_plane) -> None:
    created = _import(control_plane, *(discovered(n) for n in range(10, 20)))["created"]
    reports = [report(wid, cml={"all_cpu_percent": 12.5, "all_memory_total": 1000, "all_memory_used": 250,
                                "all_disk_total": 400, "all_disk_used": 100, "running_nodes": 0, "ready": True,
                                "labs_count": 2}) for wid in created]
    reports.append(report("does-not-exist"))
    with control_plane.client() as http:
        result = post_reports(control_plane, http, *reports)
        assert sorted(result["updated"]) == sorted(created)
        assert result["not_found"] == ["does-not-exist"]
        worker = http.get(f"/api/workers/{created[0]}", headers=control_plane.viewer()).json()
        row = next(w for w in http.get("/api/workers", headers=control_plane.viewer()).json()["items"]
                   if w["id"] == created[0])
    assert worker["telemetry"]["utilisation"] == {"cpu_percent": 12.5, "cpu_source": "cml", "memory_percent": 25.0,
                                                  "disk_percent": 25.0}
    assert worker["service_status"] == "available"
    assert worker["health_status"] == "healthy"
    assert (row["cpu_percent"], row["cpu_source"], row["memory_percent"], row["disk_percent"], row["labs_count"],
            row["service_status"], row["health_status"]) == (12.5, "cml", 25.0, 25.0, 2, "available", "healthy")


def test_concurrent_metric_batches_over_the_same_workers_lose_no_field(control_plane) -> None:
    created = _import(control_plane, *(discovered(n) for n in range(30, 36)))["created"]
    headers = control_plane.leader()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=control_plane.url, timeout=20) as http:
            ec2 = [report(wid, ec2={"state": "running", "system_status": "ok", "instance_status": "ok"})
                   for wid in created]
            cw = [report(wid, cloudwatch={"cpu_utilization": 42.0}) for wid in created]
            return list(await asyncio.gather(*(http.post(BATCH, headers=headers, json={"reports": body})
                                               for body in (ec2, cw, ec2, cw))))

    replies = asyncio.run(run())
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert all(sorted(r.json()["updated"]) == sorted(created) for r in replies)
    with control_plane.client() as http:
        for wid in created:
            stored = http.get(f"/api/internal/workers/{wid}", headers=headers).json()
            telemetry = stored["telemetry"]
            assert telemetry["ec2"] is not None, f"worker {wid}: the EC2 checks were lost"
            assert telemetry["cloudwatch"] is not None, f"worker {wid}: the CloudWatch sample was lost"
            assert telemetry["ec2"]["instance_status"] == "ok"
            assert telemetry["cloudwatch"]["cpu_utilization"] == 42.0


def test_every_page_of_the_worker_list_tells_the_same_total(control_plane) -> None:
    _import(control_plane, *(discovered(n) for n in range(40, 45)))
    with control_plane.client() as http:
        def page(offset: int, limit: int) -> dict[str, Any]:
            return http.get("/api/internal/workers", headers=control_plane.internal(),
                            params={"offset": offset, "limit": limit, "view": "brief"}).json()

        everything = page(0, 5000)
        total = everything["total"]
        assert total == len(everything["items"])
        assert total >= 5
        seen = []
        for offset in range(0, total, 2):  # full pages, then a partial last one
            current = page(offset, 2)
            assert current["total"] == total
            seen += [w["id"] for w in current["items"]]
        assert seen == [w["id"] for w in everything["items"]]
        assert page(total + 3, 2) == {"items": [], "total": total, "offset": total + 3, "limit": 2}


def test_stale_missing_or_malformed_leader_epoch_is_refused_with_409(control_plane) -> None:
    old = control_plane.leader()
    _import(control_plane, discovered(30))
    control_plane.depose()
    new = control_plane.leader()
    assert new["X-LCM-Leader-Epoch"] != old["X-LCM-Leader-Epoch"]
    with control_plane.client() as http:
        body = {"instances": [discovered(31)]}
        stale = http.post("/api/internal/workers/bulk-import", headers=old, json=body)
        missing = http.post("/api/internal/workers/bulk-import", headers=control_plane.internal(), json=body)
        malformed = http.post("/api/internal/workers/bulk-import",
                              headers={**control_plane.internal(), "X-LCM-Leader-Epoch": "x1"}, json=body)
        ok = http.post("/api/internal/workers/bulk-import", headers=new, json=body)
    assert stale.status_code == 409
    assert "stale leader epoch" in stale.json()["detail"]
    assert missing.status_code == 409
    assert malformed.status_code == 409
    assert ok.status_code == 200


def test_status_update_records_skipped_transitions_and_terminates(control_plane) -> None:
    worker_id = _import(control_plane, discovered(40, state="pending"))["created"][0]
    with control_plane.client() as http:
        # pending → (running, stopping skipped) → stopped
        response = http.post(f"/api/internal/workers/{worker_id}/status", headers=control_plane.leader(),
                             json={"ec2_state": "stopped"})
        assert response.status_code == 200
        assert response.json()["status"] == "stopped"
        worker = http.get(f"/api/workers/{worker_id}", headers=control_plane.viewer()).json()
        assert worker["status"] == "stopped"
        last = worker["state_history"][-1]
        assert last["from"] == "starting"
        assert last["to"] == "stopped"
        assert "skipped" in last["reason"]
        answer = http.post(f"/api/internal/workers/{worker_id}/status", headers=control_plane.leader(),
                           json={"ec2_state": "terminated"}).json()
        assert answer["status"] == "terminated"
        worker = http.get(f"/api/workers/{worker_id}", headers=control_plane.viewer()).json()
        assert (worker["status"], worker["phase"]) == ("terminated", "TERMINATED")
        start = http.post(f"/api/workers/{worker_id}/start", headers=control_plane.admin())
        assert start.status_code == 409


#: The shortest idle threshold the settings allow (3 s). Idleness counts from the worker's last start at the
#: earliest, and a worker imported running has just started: a test waits this long for it to be idle.
SHORT_IDLE_MINUTES = 0.05


def _set_idle(cp, http, **idle) -> None:
    settings = http.get("/api/settings", headers=cp.viewer()).json()
    change = http.put("/api/settings", headers=cp.admin(), json={"version": settings["version"], "idle": idle})
    assert change.status_code == 200, change.text


def _idle_report(worker_id: str) -> dict:
    """No node running, and CML's last user activity long ago."""
    long_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return report(worker_id, cml={"running_nodes": 0, "last_activity_at": long_ago})


def test_idle_detection_auto_pauses_and_projects_desired_state_to_etcd(control_plane) -> None:
    worker_id = _import(control_plane, discovered(50))["created"][0]
    with control_plane.client() as http:
        _set_idle(control_plane, http, enabled=True, threshold_minutes=SHORT_IDLE_MINUTES,
                  snooze_minutes_after_resume=0, auto_pause=True)
        assert post_reports(control_plane, http, _idle_report(worker_id))["auto_paused"] == []  # just started
        time.sleep(SHORT_IDLE_MINUTES * 60 + 0.5)
        outcome = post_reports(control_plane, http, _idle_report(worker_id))
        worker = http.get(f"/api/workers/{worker_id}", headers=control_plane.viewer()).json()
    assert outcome["auto_paused"] == [worker_id]
    assert worker["telemetry"]["idle"]["eligible_for_auto_pause"] is True
    assert worker["desired_status"] == "stopped"
    assert worker["activity"]["pause_reason"] == "idle_timeout"
    projected = control_plane.etcd_json(f"workers/{worker_id}/desired_state")
    assert projected is not None
    assert projected["desired_status"] == "stopped"
    assert projected["reason"] == "idle_timeout"


def test_idle_detection_respects_the_per_worker_switch(control_plane) -> None:
    worker_id = _import(control_plane, discovered(51))["created"][0]
    with control_plane.client() as http:
        _set_idle(control_plane, http, threshold_minutes=SHORT_IDLE_MINUTES, snooze_minutes_after_resume=0)
        off = http.put(f"/api/workers/{worker_id}/idle-detection", headers=control_plane.admin(),
                       json={"enabled": False})
        assert off.json()["activity"]["idle_detection_enabled"] is False
        time.sleep(SHORT_IDLE_MINUTES * 60 + 0.5)  # idle past the threshold: only the switch keeps it running
        outcome = post_reports(control_plane, http, _idle_report(worker_id))
        worker = http.get(f"/api/workers/{worker_id}", headers=control_plane.viewer()).json()
    assert outcome["auto_paused"] == []
    assert worker["telemetry"]["idle"]["eligible_for_auto_pause"] is False
    assert worker["telemetry"]["idle"]["verdict"] == "idle detection disabled for this worker"
    assert worker["desired_status"] is None


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_threshold_alert_raised_once_per_crossing_and_sent_to_webhooks(control_plane) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    try:
        worker_id = _import(control_plane, discovered(60))["created"][0]
        with control_plane.client() as http:
            settings = http.get("/api/settings", headers=control_plane.viewer()).json()
            http.put("/api/settings", headers=control_plane.admin(), json={
                "version": settings["version"],
                "monitoring": {"cpu_threshold": 80, "memory_threshold": 90,
                               "notification_webhooks": [f"http://127.0.0.1:{server.server_port}/hook"]}})
            for _ in range(3):
                worker = post_report(control_plane, http, worker_id, cml={"all_cpu_percent": 95.0})
        assert worker["health_status"] == "degraded"
        assert [a["metric"] for a in worker["alerts"]] == ["cpu"]
        for _ in range(50):
            if _Hook.received:
                break
            threading.Event().wait(0.05)
        assert len(_Hook.received) == 1
        assert "cpu at 95.0% exceeds 80%" in _Hook.received[0]["text"]
    finally:
        server.shutdown()


def test_unreachable_cml_marks_the_worker_unreachable(control_plane) -> None:
    worker_id = _import(control_plane, discovered(70))["created"][0]
    with control_plane.client() as http:
        worker = post_report(control_plane, http, worker_id, cml_unreachable="connect timeout")
    assert worker["health_status"] == "unreachable"
    assert worker["telemetry"]["health_reasons"] == ["CML API unreachable: connect timeout"]


def test_licence_request_projects_a_key_and_progress_is_recorded(control_plane) -> None:
    worker_id = _import(control_plane, discovered(80))["created"][0]
    with control_plane.client() as http:
        requested = http.post(f"/api/workers/{worker_id}/license/register", headers=control_plane.admin()).json()
        assert requested["license"]["status"] == "registering"
        assert control_plane.etcd_json(f"workers/{worker_id}/license")["action"] == "register"
        done = http.post(f"/api/internal/workers/{worker_id}/license", headers=control_plane.leader(), json={
            "status": "registered", "finished": True,
            "details": {"registration_status": "COMPLETED", "authorization_status": "IN_COMPLIANCE",
                        "node_limit": 520, "product_license": "CML_Enterprise"}}).json()
        worker = http.get(f"/api/workers/{worker_id}", headers=control_plane.viewer()).json()
    assert done["license"] == {"status": "registered", "pending_action": None}
    assert worker["license"]["status"] == "registered"
    assert worker["license"]["pending_action"] is None
    assert worker["license"]["node_limit"] == 520
    assert worker["license"]["product"] == "CML_Enterprise"


def test_malformed_bodies_get_422_with_the_reason(control_plane) -> None:
    with control_plane.client() as http:
        bad_id = http.post("/api/internal/workers/bulk-import", headers=control_plane.leader(),
                           json={"instances": [{"aws_instance_id": "not-an-id", "aws_region": "us-east-1"}]})
        not_json = http.post("/api/internal/workers/bulk-import", headers={
            **control_plane.leader(), "Content-Type": "application/json"}, content=b"{nope")
        negative = http.post(BATCH, headers=control_plane.leader(), json={"reports": [
            {"worker_id": "x", "collected_at": _now(), "cloudwatch": {"cpu_utilization": -5}}]})
    assert bad_id.status_code == 422
    assert "aws_instance_id" in bad_id.text
    assert not_json.status_code == 422
    assert negative.status_code == 422
    assert "cpu_utilization" in negative.text


def test_brief_list_leaves_out_the_heavy_field_groups(control_plane) -> None:
    worker_id = _import(control_plane, discovered(90))["created"][0]
    with control_plane.client() as http:
        post_report(control_plane, http, worker_id, cloudwatch={"cpu_utilization": 33.0})
        full = http.get(f"/api/internal/workers/{worker_id}", headers=control_plane.internal()).json()
        default = http.get("/api/internal/workers", headers=control_plane.internal()).json()["items"][0]
        brief = http.get("/api/internal/workers", headers=control_plane.internal(),
                         params={"view": "brief"}).json()["items"][0]
        controller = http.get("/api/internal/workers", headers=control_plane.internal(),
                              params={"view": "controller"}).json()["items"][0]
    assert full["telemetry"]["utilisation"]["cpu_percent"] == 33.0
    assert full["telemetry"]["cloudwatch"]["cpu_utilization"] == 33.0
    assert full["state_history"]
    assert default == brief
    # Raw telemetry groups and history are left out; the derived utilisation stays (schedulers rank by it).
    assert not {"telemetry", "cloudwatch", "state_history", "alerts"} & brief.keys()
    assert (brief["cpu_percent"], brief["cpu_source"]) == (33.0, "cloudwatch")
    assert "labs_count" in brief
    assert "capacity" in brief
    assert "lab_track" in brief
    assert (brief["id"], brief["status"], brief["health_status"]) == (worker_id, full["status"], full["health_status"])
    # The worker-controller's view: what it decides from, no telemetry at all.
    assert not {"telemetry", "cpu_percent", "state_history", "capacity"} & controller.keys()
    assert (controller["id"], controller["status"], controller["version"]) == (worker_id, full["status"],
                                                                               full["version"])
