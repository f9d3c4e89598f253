"""Controllers report leadership and loop stats to the CPA; `GET /api/system/controllers` serves them
(seed 001), with the leader as etcd knows it. Real etcd, MongoDB-wire, Redis, CPA and two replicas."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx

from lcm_core.controller_host import ControllerHost, ControllerSettings
from lcm_core.leader import PeriodicLoop
from lcm_core.testing.asgi_server import serve_in_thread
from tests.fixtures.control_plane import API_KEY


def replica(identity: str, cp) -> ControllerHost:
    settings = ControllerSettings(
        LCM_ENVIRONMENT="test", ETCD_HOST=cp.etcd.host, ETCD_PORT=cp.etcd.port, ETCD_PREFIX=cp.prefix,
        CONTROLLER_IDENTITY=identity, CONTROL_PLANE_API_URL=cp.url, CONTROL_PLANE_API_KEY=API_KEY,
        CONTROLLER_STATUS_REPORT_INTERVAL=0.3,
    )

    async def tick() -> None:
        return None

    return ControllerHost("worker-controller", settings, lease_ttl_seconds=3,
                          loops=[PeriodicLoop("metrics", tick, interval=0.1)])


def test_controllers_report_and_the_cpa_serves_leader_and_loop_stats(control_plane) -> None:
    with ExitStack() as stack:
        for name in ("wc-1", "wc-2"):
            stack.enter_context(serve_in_thread(replica(name, control_plane).create_app()))
        deadline = time.monotonic() + 15
        while True:
            overview = httpx.get(f"{control_plane.url}/api/system/controllers", headers=control_plane.viewer()).json()
            entry = overview["controllers"].get("worker-controller")
            leader_reports = [r for r in (entry or {}).get("replicas", []) if r["is_leader"]]
            if entry and entry["leader"] and len(entry["replicas"]) == 2 and leader_reports \
                    and leader_reports[0]["loops"][0]["runs"] > 0:
                break
            assert time.monotonic() < deadline, overview
            time.sleep(0.2)
    assert overview["etcd_reachable"] is True
    assert entry["leader"] in ("wc-1", "wc-2")
    assert entry["leader_epoch"] == leader_reports[0]["epoch"]
    loop = leader_reports[0]["loops"][0]
    assert loop["name"] == "metrics"
    assert loop["success_rate"] == 100.0
    followers = [r for r in entry["replicas"] if not r["is_leader"]]
    assert len(followers) == 1
    assert followers[0]["loops"][0]["runs"] == 0
    # The report endpoint is not fenced (followers report) but still needs the API key.
    assert httpx.post(f"{control_plane.url}/api/internal/controllers/status", json={}).status_code == 401
