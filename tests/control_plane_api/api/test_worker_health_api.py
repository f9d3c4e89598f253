"""Honest worker state through the real CPA (MongoDB-wire, Redis, etcd): licence progress that changes nothing
is not news, failed telemetry is stale and degrades health, alerts clear and health alerts reach webhooks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aetcd
import redis

from tests.fixtures.control_plane import ControlPlaneUnderTest, discovered


def _import(cp: ControlPlaneUnderTest, n: int) -> str:
    with cp.client() as http:
        answer = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                           json={"instances": [discovered(n)]})
    assert answer.status_code == 200, answer.text
    return answer.json()["created"][0]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _events(cp: ControlPlaneUnderTest, worker_id: str, type_: str) -> list[dict[str, Any]]:
    """Every event of `type_` about the worker in the CPA's event log (the Redis Stream), oldest first."""
    client = redis.Redis.from_url(cp.settings.redis_url.get_secret_value())
    try:
        entries = client.xrange(cp.settings.event_log_stream)
    finally:
        client.close()
    return [json.loads(fields[b"data"]) for _id, fields in entries
            if fields[b"type"].decode() == type_ and fields[b"subject"].decode() == worker_id]


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
        assert len(_events(cp, worker_id, "worker.license.updated")) == 1
        # The details changed, the action and status did not: the controller's key is not touched.
        assert _etcd_writes(cp, f"workers/{worker_id}/license") == 1
        done = {"status": "registered", "finished": True,
                "details": {"registration_status": "COMPLETED", "authorization_status": "AUTHORIZED",
                            "node_limit": 520, "product": "CML_Enterprise"}}
        for _ in range(5):
            finished = http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(), json=done)
        assert finished.json()["version"] == polled["version"] + 1
    assert finished.json()["license"]["pending_action"] is None
    assert len(_events(cp, worker_id, "worker.license.updated")) == 2
    assert _etcd_writes(cp, f"workers/{worker_id}/license") == 2
    assert cp.etcd_json(f"workers/{worker_id}/license")["action"] is None


def test_an_evaluation_worker_shows_the_unlicensed_node_limit(control_plane) -> None:
    cp = control_plane
    worker_id = _import(cp, 2)
    with cp.client() as http:
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["license"]["node_limit"] is None
        http.post(f"/api/internal/workers/{worker_id}/metrics", headers=cp.leader(), json={
            "collected_at": _now(), "cml": {"license": {"registration_status": "NOT_REGISTERED",
                                                        "authorization_status": "EVAL_MODE"}}})
        licence = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["license"]
    assert (licence["status"], licence["node_limit"]) == ("evaluation", 5)
