"""The launch-failure report (`POST /api/internal/workers/{id}/launch-failed`) over HTTP: it needs the API key
and the leader's epoch, validates its body (422, never 500), and what it records shows on the worker, its row
and the worker's event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lcm_core.domain.worker_launch import LAUNCH_ERROR_MAX_LENGTH
from tests.fixtures.control_plane import ControlPlaneUnderTest
from tests.fixtures.event_log import events_about

TEMPLATE = {"name": "launch-metal", "instance_type": "m5zn.metal", "ami_name_pattern": "CML-nothing-*",
            "regions": {"us-east-1": {}}, "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 300,
                                                       "max_nodes": 100}}
NO_AMI = "no AMI matches 'CML-nothing-*' in us-east-1"


def requested_worker(cp: ControlPlaneUnderTest) -> str:
    with cp.client() as http:
        assert http.post("/api/templates", headers=cp.admin(), json=TEMPLATE).status_code == 201
        created = http.post("/api/workers", headers=cp.admin(),
                            json={"template_name": TEMPLATE["name"], "aws_region": "us-east-1"})
        assert created.status_code in (200, 201), created.text
        return str(created.json()["id"])


def at(seconds: int, start: datetime | None = None) -> str:
    return ((start or datetime.now(UTC)) + timedelta(seconds=seconds)).isoformat()


def test_failed_launches_are_counted_on_the_worker_and_shown(control_plane) -> None:
    cp = control_plane
    worker_id = requested_worker(cp)
    url, start = f"/api/internal/workers/{worker_id}/launch-failed", datetime.now(UTC)
    with cp.client() as http:
        for second in (1, 2, 2, 3):  # the second report of one attempt is not counted again
            answer = http.post(url, headers=cp.leader(), json={"error": NO_AMI, "observed_at": at(second, start)})
            assert answer.status_code == 200, answer.text
            assert answer.json()["id"] == worker_id
        stored = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()
        row = next(w for w in http.get("/api/workers", headers=cp.viewer(), params={"limit": 1000}).json()["items"]
                   if w["id"] == worker_id)
    failure = stored["launch_failure"]
    assert (failure["attempts"], failure["error"]) == (3, NO_AMI)
    assert row["launch_failure"] == failure
    assert stored["summary"]["launch_failure"] == failure
    mine = events_about(cp, worker_id, "worker.launch.failed")
    assert [e["attempts"] for e in mine] == [1, 2, 3]
    assert mine[-1]["error"] == NO_AMI
    assert mine[-1]["summary"]["launch_failure"]["attempts"] == 3


@pytest.mark.parametrize("headers", ["none", "wrong key", "no epoch"])
def test_the_report_needs_the_api_key_and_the_leaders_epoch(control_plane, headers: str) -> None:
    cp = control_plane
    worker_id = requested_worker(cp)
    sent = {"none": {}, "wrong key": {"X-API-Key": "not-the-key", "X-LCM-Leader-Epoch": "1"},
            "no epoch": cp.internal()}[headers]
    with cp.client() as http:
        answer = http.post(f"/api/internal/workers/{worker_id}/launch-failed", headers=sent,
                           json={"error": NO_AMI, "observed_at": at(1)})
        assert answer.status_code in (401, 403, 409), answer.text
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["launch_failure"] is None


@pytest.mark.parametrize("body", [
    None, [], "text", {}, {"error": NO_AMI}, {"observed_at": "2026-12-05T12:00:00Z"},
    {"error": "", "observed_at": "2026-12-05T12:00:00Z"},
    {"error": "x" * (LAUNCH_ERROR_MAX_LENGTH + 1), "observed_at": "2026-12-05T12:00:00Z"},
    {"error": NO_AMI, "observed_at": "yesterday"}, {"error": NO_AMI, "observed_at": 1764936000},
    {"error": ["list"], "observed_at": "2026-12-05T12:00:00Z"},
    {"error": NO_AMI, "observed_at": "2026-12-05T12:00:00Z", "attempts": 1000},
])
def test_a_malformed_report_is_refused_with_422(control_plane, body: Any) -> None:
    cp = control_plane
    worker_id = requested_worker(cp)
    with cp.client() as http:
        answer = http.post(f"/api/internal/workers/{worker_id}/launch-failed", headers=cp.leader(), json=body)
        assert answer.status_code == 422, answer.text
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["launch_failure"] is None


def test_a_report_for_an_unknown_worker_is_404(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        answer = http.post("/api/internal/workers/no-such-worker/launch-failed", headers=cp.leader(),
                           json={"error": NO_AMI, "observed_at": at(1)})
    assert answer.status_code == 404, answer.text


@pytest.mark.parametrize("observed_at", [
    "2026-12-05T12:00:05",  # no offset: compared with the stored attempt's, it was a 500
    "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00",  # beyond what a UTC time can say: a 500
])
def test_an_attempt_time_without_an_offset_or_out_of_range_is_refused_with_422(control_plane,
                                                                             observed_at: str) -> None:
    cp = control_plane
    worker_id = requested_worker(cp)
    url = f"/api/internal/workers/{worker_id}/launch-failed"
    with cp.client() as http:
        first = http.post(url, headers=cp.leader(), json={"error": NO_AMI, "observed_at": "2026-12-05T12:00:00Z"})
        assert first.status_code == 200, first.text
        answer = http.post(url, headers=cp.leader(), json={"error": NO_AMI, "observed_at": observed_at})
        assert answer.status_code == 422, answer.text
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["launch_failure"]["attempts"] == 1


def test_an_attempt_from_the_future_is_refused_and_does_not_stop_the_count(control_plane) -> None:
    """An attempt stamped years ahead (a controller's clock gone wrong) would be the last one counted until then:
    every later report, older than it, was ignored and the pool's failure stopped counting."""
    cp = control_plane
    worker_id = requested_worker(cp)
    url = f"/api/internal/workers/{worker_id}/launch-failed"
    with cp.client() as http:
        ahead = http.post(url, headers=cp.leader(), json={"error": NO_AMI, "observed_at": "9999-12-31T23:59:59Z"})
        assert ahead.status_code == 422, ahead.text
        for second in (1, 2):
            answer = http.post(url, headers=cp.leader(), json={"error": NO_AMI, "observed_at": at(second)})
            assert answer.status_code == 200, answer.text
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()["launch_failure"]["attempts"] == 2
