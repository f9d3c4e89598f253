"""The internal API against real MongoDB-wire, Redis and etcd: idempotent import, no lost update under
concurrency, the leader-epoch fence, status/metrics/idle semantics and the etcd projection."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx

from tests.fixtures.control_plane import discovered


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
        worker = next(w for w in http.get("/api/workers", headers=control_plane.viewer()).json()["items"]
                      if w["aws_instance_id"] == discovered(14)["aws_instance_id"])
    assert worker["status"] == "stopped"
    stops = [h for h in worker["state_history"] if h.get("field", "status") == "status" and h["to"] == "stopped"]
    assert len(stops) == 1  # a lost race re-reads and finds nothing left to do


def test_two_concurrent_metric_updates_lose_no_field(control_plane) -> None:
    worker_id = _import(control_plane, discovered(3))["created"][0]
    headers = control_plane.leader()

    async def run() -> None:
        async with httpx.AsyncClient(base_url=control_plane.url, timeout=20) as http:
            for round_ in range(10):
                ec2 = {"collected_at": _now(), "ec2": {"state": "running", "system_status": "ok",
                                                       "instance_status": f"ok-{round_}"}}
                cw = {"collected_at": _now(), "cloudwatch": {"cpu_utilization": float(round_),
                                                             "network_in_bytes": 1000.0 + round_}}
                a, b = await asyncio.gather(
                    http.post(f"/api/internal/workers/{worker_id}/metrics", headers=headers, json=ec2),
                    http.post(f"/api/internal/workers/{worker_id}/metrics", headers=headers, json=cw))
                assert a.status_code == 200, a.text
                assert b.status_code == 200, b.text
                stored = (await http.get(f"/api/internal/workers/{worker_id}", headers=headers)).json()
                assert stored["telemetry"]["ec2"]["instance_status"] == f"ok-{round_}"
                assert stored["telemetry"]["cloudwatch"]["cpu_utilization"] == float(round_)

    asyncio.run(run())


def test_metrics_batch_updates_many_workers_and_reports_unknown_ids(control_plane) -> None:
    created = _import(control_plane, *(discovered(n) for n in range(10, 20)))["created"]
    reports = [{"worker_id": wid, "metrics": {"collected_at": _now(), "cml": {
        "system_info": {"all_cpu_percent": 12.5, "all_memory_total": 1000, "all_memory_used": 250,
                        "all_disk_total": 400, "all_disk_used": 100, "running_nodes": 0},
        "ready": True, "labs_count": 2}}} for wid in created]
    reports.append({"worker_id": "does-not-exist", "metrics": {"collected_at": _now()}})
    with control_plane.client() as http:
        result = http.post("/api/internal/workers/metrics:batch", headers=control_plane.leader(),
                           json={"reports": reports}).json()
        assert sorted(result["updated"]) == sorted(created)
        assert result["not_found"] == ["does-not-exist"]
        worker = http.get(f"/api/workers/{created[0]}", headers=control_plane.viewer()).json()
    assert worker["telemetry"]["cpu_percent"] == 12.5
    assert worker["telemetry"]["cpu_source"] == "cml"
    assert worker["telemetry"]["memory_percent"] == 25.0
    assert worker["telemetry"]["disk_percent"] == 25.0
    assert worker["service_status"] == "available"
    assert worker["health_status"] == "healthy"


def test_concurrent_metric_batches_over_the_same_workers_lose_no_field(control_plane) -> None:
    created = _import(control_plane, *(discovered(n) for n in range(30, 36)))["created"]
    headers = control_plane.leader()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=control_plane.url, timeout=20) as http:
            ec2 = [{"worker_id": wid, "metrics": {"collected_at": _now(), "ec2": {
                "state": "running", "system_status": "ok", "instance_status": "ok"}}} for wid in created]
            cw = [{"worker_id": wid, "metrics": {"collected_at": _now(), "cloudwatch": {
                "cpu_utilization": 42.0}}} for wid in created]
            return list(await asyncio.gather(*(
                http.post("/api/internal/workers/metrics:batch", headers=headers, json={"reports": body})
                for body in (ec2, cw, ec2, cw))))

    replies = asyncio.run(run())
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    assert all(sorted(r.json()["updated"]) == sorted(created) for r in replies)
    with control_plane.client() as http:
        for wid in created:
            stored = http.get(f"/api/internal/workers/{wid}", headers=headers).json()
            assert stored["telemetry"]["ec2"]["instance_status"] == "ok"
            assert stored["telemetry"]["cloudwatch"]["cpu_utilization"] == 42.0


def test_every_page_of_the_worker_list_tells_the_same_total(control_plane) -> None:
    _import(control_plane, *(discovered(n) for n in range(40, 45)))
    with control_plane.client() as http:
        def page(offset: int, limit: int) -> dict[str, object]:
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
        worker = response.json()
        assert worker["status"] == "stopped"
        last = worker["state_history"][-1]
        assert last["from"] == "starting"
        assert last["to"] == "stopped"
        assert "skipped" in last["reason"]
        worker = http.post(f"/api/internal/workers/{worker_id}/status", headers=control_plane.leader(),
                           json={"ec2_state": "terminated"}).json()
        assert worker["status"] == "terminated"
        assert worker["phase"] == "TERMINATED"
        start = http.post(f"/api/workers/{worker_id}/start", headers=control_plane.admin())
        assert start.status_code == 409


def test_idle_detection_auto_pauses_and_projects_desired_state_to_etcd(control_plane) -> None:
    worker_id = _import(control_plane, discovered(50))["created"][0]
    with control_plane.client() as http:
        settings = http.get("/api/settings", headers=control_plane.viewer()).json()
        change = http.put("/api/settings", headers=control_plane.admin(), json={
            "version": settings["version"],
            "idle": {"enabled": True, "threshold_minutes": 1, "snooze_minutes_after_resume": 0, "auto_pause": True},
        })
        assert change.status_code == 200, change.text
        long_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        http.post(f"/api/internal/workers/{worker_id}/metrics", headers=control_plane.leader(), json={
            "collected_at": _now(), "cml": {"system_info": {"running_nodes": 0}, "last_activity_at": long_ago}})
        verdict = http.post(f"/api/internal/workers/{worker_id}/detect-idle", headers=control_plane.leader())
        assert verdict.status_code == 200, verdict.text
        assert verdict.json()["eligible_for_auto_pause"] is True
        worker = http.get(f"/api/workers/{worker_id}", headers=control_plane.viewer()).json()
    assert worker["desired_status"] == "stopped"
    assert worker["activity"]["pause_reason"] == "idle_timeout"
    projected = control_plane.etcd_json(f"workers/{worker_id}/desired_state")
    assert projected is not None
    assert projected["desired_status"] == "stopped"
    assert projected["reason"] == "idle_timeout"


def test_idle_detection_respects_the_per_worker_switch(control_plane) -> None:
    worker_id = _import(control_plane, discovered(51))["created"][0]
    with control_plane.client() as http:
        settings = http.get("/api/settings", headers=control_plane.viewer()).json()
        http.put("/api/settings", headers=control_plane.admin(), json={
            "version": settings["version"], "idle": {"threshold_minutes": 1, "snooze_minutes_after_resume": 0}})
        off = http.put(f"/api/workers/{worker_id}/idle-detection", headers=control_plane.admin(),
                       json={"enabled": False})
        assert off.json()["activity"]["idle_detection_enabled"] is False
        long_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        http.post(f"/api/internal/workers/{worker_id}/metrics", headers=control_plane.leader(), json={
            "collected_at": _now(), "cml": {"last_activity_at": long_ago}})
        verdict = http.post(f"/api/internal/workers/{worker_id}/detect-idle", headers=control_plane.leader()).json()
    assert verdict["eligible_for_auto_pause"] is False
    assert verdict["desired_status"] is None


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
            hot = {"collected_at": _now(), "cml": {"system_info": {"all_cpu_percent": 95.0}}}
            for _ in range(3):
                worker = http.post(f"/api/internal/workers/{worker_id}/metrics", headers=control_plane.leader(),
                                   json=hot).json()
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
        worker = http.post(f"/api/internal/workers/{worker_id}/metrics", headers=control_plane.leader(), json={
            "collected_at": _now(), "cml": {"reachable": False, "error": "connect timeout"}}).json()
    assert worker["health_status"] == "unreachable"


def test_licence_request_projects_a_key_and_progress_is_recorded(control_plane) -> None:
    worker_id = _import(control_plane, discovered(80))["created"][0]
    with control_plane.client() as http:
        requested = http.post(f"/api/workers/{worker_id}/license/register", headers=control_plane.admin()).json()
        assert requested["license"]["status"] == "registering"
        assert control_plane.etcd_json(f"workers/{worker_id}/license")["action"] == "register"
        done = http.post(f"/api/internal/workers/{worker_id}/license", headers=control_plane.leader(), json={
            "status": "registered", "finished": True,
            "details": {"registration_status": "COMPLETED", "authorization_status": "IN_COMPLIANCE",
                        "node_limit": 520, "product": "CML_Enterprise"}}).json()
    assert done["license"]["status"] == "registered"
    assert done["license"]["pending_action"] is None
    assert done["license"]["node_limit"] == 520


def test_malformed_bodies_get_422_with_the_reason(control_plane) -> None:
    with control_plane.client() as http:
        bad_id = http.post("/api/internal/workers/bulk-import", headers=control_plane.leader(),
                           json={"instances": [{"aws_instance_id": "not-an-id", "aws_region": "us-east-1"}]})
        not_json = http.post("/api/internal/workers/bulk-import", headers={
            **control_plane.leader(), "Content-Type": "application/json"}, content=b"{nope")
        negative = http.post("/api/internal/workers/x/metrics", headers=control_plane.leader(),
                             json={"collected_at": _now(), "cloudwatch": {"cpu_utilization": -5}})
    assert bad_id.status_code == 422
    assert "aws_instance_id" in bad_id.text
    assert not_json.status_code == 422
    assert negative.status_code == 422
    assert "cpu_utilization" in negative.text


def test_brief_list_leaves_out_the_heavy_field_groups(control_plane) -> None:
    worker_id = _import(control_plane, discovered(90))["created"][0]
    with control_plane.client() as http:
        http.post(f"/api/internal/workers/{worker_id}/metrics", headers=control_plane.leader(),
                  json={"collected_at": _now(), "cloudwatch": {"cpu_utilization": 33.0}})
        full = http.get("/api/internal/workers", headers=control_plane.internal()).json()["items"][0]
        brief = http.get("/api/internal/workers", headers=control_plane.internal(),
                         params={"view": "brief"}).json()["items"][0]
    assert full["telemetry"]["cpu_percent"] == 33.0
    assert full["telemetry"]["cloudwatch"]["cpu_utilization"] == 33.0
    assert full["state_history"]
    # Raw telemetry groups and history are left out; the derived utilisation stays (schedulers rank by it).
    assert brief["telemetry"]["cloudwatch"]["cpu_utilization"] is None
    assert brief["telemetry"]["cpu_percent"] == 33.0
    assert brief["state_history"] == []
    assert "labs_count" in brief
    assert "capacity" in brief
    assert "lab_track" in brief
    assert (brief["id"], brief["status"], brief["health_status"]) == (worker_id, full["status"], full["health_status"])
