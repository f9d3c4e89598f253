"""Two controller replicas over HTTP against a real etcd: one leads, both are healthy and ready."""

from __future__ import annotations

import time
from contextlib import ExitStack

import httpx

from lcm_core.controller_host import ControllerHost
from lcm_core.controller_settings import ControllerSettings
from lcm_core.leader import PeriodicLoop
from lcm_core.testing.asgi_server import serve_in_thread


def replica(identity: str, etcd_port: int, runs: list[str]) -> ControllerHost:
    settings = ControllerSettings(
        LCM_ENVIRONMENT="test", ETCD_HOST="127.0.0.1", ETCD_PORT=etcd_port, CONTROLLER_IDENTITY=identity,
        ETCD_PREFIX="/lcm-test-host",
    )

    async def tick() -> None:
        runs.append(identity)

    loop = PeriodicLoop("tick", tick, interval=0.1)
    return ControllerHost("demo-controller", settings, lease_ttl_seconds=3, loops=[loop])


def test_only_the_leader_runs_loops_and_status_says_who_leads(etcd_server) -> None:
    runs: list[str] = []
    with ExitStack() as stack:
        urls = [stack.enter_context(serve_in_thread(replica(name, etcd_server.port, runs).create_app()))
                for name in ("r1", "r2")]
        deadline = time.monotonic() + 10
        statuses: list[dict] = []
        while time.monotonic() < deadline:
            statuses = [httpx.get(f"{url}/status").json() for url in urls]
            if any(s["is_leader"] for s in statuses) and runs:
                break
            time.sleep(0.1)
        leaders = [s for s in statuses if s["is_leader"]]
        assert len(leaders) == 1, statuses
        leader = leaders[0]
        assert leader["epoch"] > 0
        time.sleep(0.5)
        assert set(runs) == {leader["identity"]}, "a follower ran a loop"
        status = httpx.get(f"{urls[[s['identity'] for s in statuses].index(leader['identity'])]}/status").json()
        assert status["loops"][0]["name"] == "tick"
        assert status["loops"][0]["runs"] >= 3
        for url in urls:
            assert httpx.get(f"{url}/health").json() == {"status": "ok"}
            assert httpx.get(f"{url}/ready").status_code == 200
