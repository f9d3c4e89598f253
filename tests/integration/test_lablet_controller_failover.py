"""Two lablet-controller processes (the console entry point): exactly one leads and places sessions; SIGKILL
it and the other takes over within the lease TTL and places the next session; the dead leader's epoch is
refused by the CPA's session endpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.fixtures import replicas
from tests.fixtures.cml_simulator import CmlSimulator
from tests.fixtures.control_plane import ControlPlaneUnderTest
from tests.fixtures.lablet_api import create_definition, create_session, decision
from tests.fixtures.polling import statuses
from tests.integration.test_lablet_controller import registered_worker, session, wait_for

TTL = 3


def start_replica(name: str, cp: ControlPlaneUnderTest, sim: CmlSimulator,
                  log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return replicas.start_replica("lcm-lablet-controller", name, cp, "LABLET_CONTROLLER_PORT", {
        "LABLET_CONTROLLER_LEADER_LEASE_TTL": str(TTL), "LABLET_SCHEDULING_INTERVAL": "0.5",
        "LABLET_BOOT_POLL_INTERVAL": "0.3",
        "CML_WORKER_URL_TEMPLATE": f"{sim.url}/hosts/{{instance_id}}", "CML_WORKER_API_USERNAME": sim.username,
        "CML_WORKER_API_PASSWORD": sim.password, "CML_WORKER_VERIFY_TLS": "false",
    }, log)


def test_failover_keeps_placing_sessions(control_plane: ControlPlaneUnderTest, cml_simulator_clean: CmlSimulator,
                                         tmp_path: Path) -> None:
    cp = control_plane
    registered_worker(cp)
    definition = create_definition(cp, lab_track=None)
    procs, urls = {}, {}
    for name in ("lc-a", "lc-b"):
        procs[name], urls[name] = start_replica(name, cp, cml_simulator_clean, tmp_path / f"{name}.log")
    try:
        first = create_session(cp, definition["id"])["id"]
        wait_for("first session running", lambda: session(cp, first)["status"] == "running", timeout=30)
        current = statuses(urls)
        leaders = [n for n, s in current.items() if s["is_leader"]]
        assert len(leaders) == 1, current
        leader = leaders[0]
        follower = next(n for n in urls if n != leader)
        assert all(loop["runs"] == 0 for loop in current[follower]["loops"]), "a follower ran a loop"
        old_epoch = current[leader]["epoch"]

        os.killpg(procs[leader].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for("the follower leads", lambda: (statuses({follower: urls[follower]}).get(follower) or {})
                 .get("is_leader"), timeout=TTL + 3)
        assert time.monotonic() - killed_at < TTL + 3
        assert statuses({follower: urls[follower]})[follower]["epoch"] > old_epoch

        second = create_session(cp, definition["id"])["id"]
        wait_for("second session running", lambda: session(cp, second)["status"] == "running", timeout=30)
        stale = httpx.post(f"{cp.url}/api/internal/lablet-sessions/{second}/schedule",
                           json={"worker_id": None, "decision": decision(None, "stale")},
                           headers=cp.internal(old_epoch))
        assert stale.status_code == 409
    finally:
        replicas.stop_replicas(procs.values())
