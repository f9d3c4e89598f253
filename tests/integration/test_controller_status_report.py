"""Controllers report leadership and loop stats to the CPA; `GET /api/system/controllers` serves them
with the leader as etcd knows it. Real etcd, MongoDB-wire, Redis, CPA and two replicas."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx

from lcm_core.controller_host import ControllerHost
from lcm_core.controller_settings import ControllerSettings
from lcm_core.leader import PeriodicLoop
from lcm_core.testing.asgi_server import serve_in_thread
from tests.fixtures.control_plane import API_KEY
from tests.fixtures.settings import from_environment


def replica(identity: str, cp) -> ControllerHost:
    settings = from_environment(
        ControllerSettings,
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
            overview = _overview(control_plane)
            entry = overview["controllers"].get("worker-controller")
            leader_reports = [r for r in (entry or {}).get("replicas", []) if r["is_leader"]]
            if entry and entry["leader"] and len(entry["replicas"]) == 2 and leader_reports \
                    and leader_reports[0]["loops"][0]["runs"] > 0:
                break
            assert time.monotonic() < deadline, overview
            time.sleep(0.2)
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


def _overview(cp) -> dict:
    """The overview once the CPA has read the election keys. A read can time out on a loaded machine (the
    overview then says `etcd_reachable: false` and shows the replicas' claims, by design); a later one must
    succeed."""
    deadline = time.monotonic() + 10
    while True:
        overview = httpx.get(f"{cp.url}/api/system/controllers", headers=cp.viewer()).json()
        if overview["etcd_reachable"] is True:
            return overview
        assert time.monotonic() < deadline, overview
        time.sleep(0.2)


def _overview_entry(cp) -> dict:
    return _overview(cp)["controllers"].get("worker-controller") or {"leader": None, "replicas": []}


def test_a_killed_leader_turns_stale_and_the_election_key_holder_is_shown_leading(control_plane) -> None:
    cp = control_plane
    # The first leader holds the election key (the fixture campaigns as "test-leader") and reports itself
    # leading every half second, as a controller would: posted straight to the internal endpoint.
    epoch = int(cp.leader()["X-LCM-Leader-Epoch"])

    def ghost_report() -> None:
        answer = httpx.post(f"{cp.url}/api/internal/controllers/status", headers=cp.internal(), json={
            "service": "worker-controller", "identity": "test-leader", "is_leader": True, "epoch": epoch,
            "report_interval_seconds": 0.5})
        assert answer.status_code == 204, answer.text

    ghost_report()
    entry = _overview_entry(cp)
    [ghost] = entry["replicas"]
    assert (entry["leader"], entry["leader_epoch"]) == ("test-leader", epoch)
    assert (ghost["is_leader"], ghost["stale"], ghost["report_interval_seconds"]) == (True, False, 0.5)

    # kill -9: no more reports, and its lease runs out (the key goes); another replica takes over.
    cp.depose()
    with serve_in_thread(replica("wc-live", cp).create_app()):
        deadline = time.monotonic() + 20
        while True:
            entry = _overview_entry(cp)
            shown_leading = [r["identity"] for r in entry["replicas"] if r["is_leader"]]
            # Never two leaders on the page, and a replica shown leading is the one etcd names.
            assert len(shown_leading) <= 1, entry
            assert shown_leading in ([], [entry["leader"]]), entry
            by_id = {r["identity"]: r for r in entry["replicas"]}
            if shown_leading == ["wc-live"] and by_id["test-leader"]["stale"]:
                break
            assert time.monotonic() < deadline, entry
            time.sleep(0.2)
    ghost, live = by_id["test-leader"], by_id["wc-live"]
    assert (ghost["stale"], ghost["is_leader"], ghost["reported_is_leader"]) == (True, False, True)
    assert "no report for" in ghost["reason"]
    assert (live["stale"], live["is_leader"], live["report_interval_seconds"]) == (False, True, 0.3)
    assert entry["leader"] == "wc-live"
    assert entry["leader_epoch"] == live["epoch"] > epoch
