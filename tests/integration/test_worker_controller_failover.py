"""Two worker-controller processes: exactly one leads and runs the loops; SIGKILL the leader and the other
takes over within the lease TTL, with a new epoch; the dead leader's epoch is refused by the CPA."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from lcm_core.testing.processes import free_port
from tests.fixtures import replicas
from tests.fixtures.polling import statuses

TTL = 3


def start_replica(name: str, cp, moto_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return replicas.start_replica("lcm-worker-controller", name, cp, "WORKER_CONTROLLER_PORT", {
        "WORKER_CONTROLLER_LEADER_LEASE_TTL": str(TTL), "WORKER_DISCOVERY_REGIONS": "ca-central-1",
        "WORKER_DISCOVERY_INTERVAL": "1", "METRICS_POLL_INTERVAL": "1", "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
        "CML_WORKER_URL_TEMPLATE": f"http://127.0.0.1:{free_port()}/{{instance_id}}",
    }, log)


def test_leader_failover_within_the_lease_ttl(control_plane, moto_server, tmp_path) -> None:
    moto_url = f"http://{moto_server.address}"
    procs, urls = {}, {}
    for name in ("wc-a", "wc-b"):
        procs[name], urls[name] = start_replica(name, control_plane, moto_url, tmp_path / f"{name}.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            current = statuses(urls)
            leaders = [n for n, s in current.items() if s["is_leader"]]
            if len(current) == 2 and len(leaders) == 1:
                discovery = {loop["name"]: loop for loop in current[leaders[0]]["loops"]}["discovery"]
                if discovery["runs"] > 0:
                    break
            assert time.monotonic() < deadline, (current, (tmp_path / "wc-a.log").read_text()[-3000:])
            time.sleep(0.2)
        leader = leaders[0]
        follower = next(n for n in urls if n != leader)
        old_epoch = current[leader]["epoch"]
        assert all(loop["runs"] == 0 for loop in current[follower]["loops"]), "a follower ran a loop"

        os.killpg(procs[leader].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while True:
            now = statuses({follower: urls[follower]})
            if now and now[follower]["is_leader"]:
                break
            assert time.monotonic() - killed_at < TTL + 3, "the follower did not take over within the TTL"
            time.sleep(0.1)
        assert now[follower]["epoch"] > old_epoch
        stale = httpx.post(f"{control_plane.url}/api/internal/workers/bulk-import", json={"instances": []},
                           headers=control_plane.internal(old_epoch))
        assert stale.status_code == 409
    finally:
        replicas.stop_replicas(procs.values())
