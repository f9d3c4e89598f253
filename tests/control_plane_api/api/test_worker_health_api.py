"""Honest worker state through the real CPA (MongoDB-wire, Redis, etcd): licence progress that changes nothing
is not news, failed telemetry is stale and degrades health, alerts clear and health alerts reach webhooks."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import aetcd

from tests.fixtures.control_plane import ControlPlaneUnderTest, discovered
from tests.fixtures.event_log import events_about
from tests.fixtures.metrics import post_report


def _import(cp: ControlPlaneUnderTest, n: int) -> str:
    with cp.client() as http:
        answer = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                           json={"instances": [discovered(n)]})
    assert answer.status_code == 200, answer.text
    return answer.json()["created"][0]


def _etcd_writes(cp: ControlPlaneUnderTest, key: str) -> int:
    """How many times the key was written since it was created (etcd's per-key version)."""
    async def run() -> int:
        client = aetcd.Client(host=cp.etcd.host, port=cp.etcd.port)
        try:
            got = await client.get(f"{cp.prefix}/{key}".encode())
            return 0 if got is None else int(got.version)
        finally:
            await client.close()

    return asyncio.run(run())


def test_identical_licence_progress_is_one_event_one_write_and_one_etcd_write(control_plane) -> None:
    cp = control_plane
    worker_id = _import(cp, 1)
    progress = {"status": "registering", "details": {"registration_status": "IN_PROGRESS",
                                                     "authorization_status": "EVAL_MODE"}}
    with cp.client() as http:
        requested = http.post(f"/api/workers/{worker_id}/license/register", headers=cp.admin()).json()
        assert _etcd_writes(cp, f"workers/{worker_id}/license") == 1
        replies = [http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(), json=progress)
                   for _ in range(20)]
        assert all(r.status_code == 200 for r in replies), replies[-1].text
        polled = replies[-1].json()
        assert polled["version"] == requested["version"] + 1  # the first report changed the details, no other
        assert len(events_about(cp, worker_id, "worker.license.updated")) == 1
        # The details changed, the action and status did not: the controller's key is not touched.
        assert _etcd_writes(cp, f"workers/{worker_id}/license") == 1
        done = {"status": "registered", "finished": True,
                "details": {"registration_status": "COMPLETED", "authorization_status": "AUTHORIZED",
                            "node_limit": 520, "product_license": "CML_Enterprise"}}
        for _ in range(5):
            finished = http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(), json=done)
        assert finished.json()["version"] == polled["version"] + 1
    assert finished.json()["license"]["pending_action"] is None
    assert len(events_about(cp, worker_id, "worker.license.updated")) == 2
    assert _etcd_writes(cp, f"workers/{worker_id}/license") == 2
    assert cp.etcd_json(f"workers/{worker_id}/license")["action"] is None


def test_an_evaluation_worker_shows_the_unlicensed_node_limit(control_plane) -> None:
    cp = control_plane
    worker_id = _import(cp, 2)
    with cp.client() as http:
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["license"]["node_limit"] is None
        post_report(cp, http, worker_id, cml={"license": {"registration_status": "NOT_REGISTERED",
                                                          "authorization_status": "EVAL_MODE"}})
        licence = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["license"]
    assert (licence["status"], licence["node_limit"]) == ("evaluation", 5)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_failed_telemetry_is_stale_degrades_health_and_alerts_open_and_close(control_plane) -> None:
    cp = control_plane
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    worker_id = _import(cp, 3)
    info = {"all_cpu_percent": 95.0, "all_memory_total": 1000, "all_memory_used": 100}
    health = {"health_valid": True, "controller_valid": True}
    try:
        with cp.client() as http:
            settings = http.get("/api/settings", headers=cp.viewer()).json()
            http.put("/api/settings", headers=cp.admin(), json={
                "version": settings["version"], "monitoring": {
                    "cpu_threshold": 80, "notification_webhooks": [f"http://127.0.0.1:{server.server_port}/h"]}})

            def report(**cml: Any) -> dict[str, Any]:
                return post_report(cp, http, worker_id, ec2={"state": "running"}, **cml)

            hot = report(cml={"ready": True, **info, **health})
            assert (hot["service_status"], hot["health_status"], hot["active_alerts"]) == (
                "available", "degraded", ["cpu"])
            failing = report(cml={**info, "errors": {"system_health": "CmlResponseError: not JSON"}})
            assert failing["health_status"] == "degraded"
            assert "CML system_health failed (CmlResponseError: not JSON)" in failing["telemetry"]["health_reasons"]
            assert failing["telemetry"]["stale"]["cml.system_health"]["error"] == "CmlResponseError: not JSON"
            assert failing["telemetry"]["cml"]["health_valid"] is True  # the last values, kept
            assert failing["telemetry"]["cml"]["controller_valid"] is True
            seen = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["telemetry"]["last_seen_at"]
            for _ in range(3):
                down = report(cml_unreachable="connect timeout")
            assert down["health_status"] == "unreachable"
            assert down["telemetry"]["last_seen_at"] == seen
            assert sorted(down["telemetry"]["stale"]) == ["cml", "cml.system_health"]
            assert down["telemetry"]["utilisation"]["cpu_percent"] == 95.0
            back = report(cml={**info, "all_cpu_percent": 10.0, **health})
            assert (back["health_status"], back["telemetry"]["stale"], back["active_alerts"]) == ("healthy", {}, [])
            assert back["telemetry"]["last_seen_at"] > seen
            assert back["alerts"][-1]["cleared_at"] is not None
        counts = {t: len(events_about(cp, worker_id, t)) for t in (
            "worker.alert.raised", "worker.alert.cleared", "worker.health.alert", "worker.health.recovered")}
        assert counts == dict.fromkeys(counts, 1)
        for _ in range(100):
            if len(_Hook.received) >= 4:
                break
            threading.Event().wait(0.05)
        texts = sorted(body["text"] for body in _Hook.received)
        name = discovered(3)["name"]
        assert texts == sorted([
            f"LCM alert: worker {name} cpu at 95.0% exceeds 80%",
            f"LCM alert: worker {name} is unreachable: CML API unreachable: connect timeout",
            f"LCM: worker {name} is no longer unreachable, now healthy",
            f"LCM: worker {name} cpu back to 10.0% (threshold 80%): alert cleared",
        ])
        assert {body["event"]["type"] for body in _Hook.received} == set(counts)
    finally:
        server.shutdown()
