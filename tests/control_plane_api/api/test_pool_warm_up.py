"""The warm pool's warm-up against a real CPA: an evaluation's `warm_up` creates a pool worker that boots once
without asking for a licence and takes no session; retired to stopped, then resumed for the pool, it becomes an
ordinary member that registers its licence once its CML is up."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.control_plane import discovered
from tests.fixtures.lablet_api import (
    LABLET,
    create_definition,
    create_session,
    decision,
    report_cml_health,
    report_status,
    worker_detail,
)
from tests.fixtures.pool_api import evaluate_pool, pool_work

TEMPLATE = {"name": "standard", "instance_type": "m5zn.metal", "regions": {"us-east-1": {}},
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200}}
SPEC = {"name": "ccna-pool", "lab_track": "ccna", "template_name": "standard", "regions": ["us-east-1"],
        "scaling": {"min_workers": 0, "max_workers": 2, "warm_pool_size": 1}}


def test_a_warm_up_boots_without_a_licence_takes_no_session_and_joins_the_pool_when_resumed(control_plane) -> None:
    cp = control_plane
    definition = create_definition(cp, lab_track="ccna")
    session = create_session(cp, definition["id"])
    with cp.client() as http:
        assert http.post("/api/templates", headers=cp.admin(), json=TEMPLATE).status_code == 201
        pool = http.post("/api/pools", headers=cp.admin(), json=SPEC).json()
        recorded = evaluate_pool(cp, http, pool["id"], desired_workers=0, warm_up=["us-east-1"], decision={
            "at": datetime.now(UTC).isoformat(), "action": "none", "trigger": "converge",
            "reason": "warm pool of 1 has 0: launching 1 to boot once and stop"})
        assert recorded["launches"] == 1
        work = pool_work(cp, http, pool["id"])
        [row] = work.workers
        assert (row.park_when_ready, row.name) == (True, "ccna-pool-000")
        history = http.get(f"/api/pools/{pool['id']}/history", headers=cp.viewer()).json()
        assert history[0]["launched"] == [row.id]
        worker_id = row.id
        assert worker_detail(cp, http, worker_id)["license"]["register_when_available"] is False

        # It boots: CML comes up, and no licence is asked for.
        http.post(f"/api/internal/workers/{worker_id}/provisioned", headers=cp.leader(),
                  json=discovered(7, state="pending", tags={"lcm:worker-id": worker_id})).raise_for_status()
        report_status(cp, http, worker_id, "running", "available")
        booted = worker_detail(cp, http, worker_id)
        assert (booted["license"]["status"], booted["license"]["pending_action"]) == ("unregistered", None)

        # Healthy, and even asked directly, it takes no session.
        assert report_cml_health(cp, http, worker_id)["summary"]["health_status"] == "healthy"
        refused = http.post(f"/api/internal/lablet-sessions/{session['id']}/schedule", headers=cp.leader(LABLET),
                            json={"worker_id": worker_id, "decision": decision(worker_id)})
        assert refused.status_code == 409, refused.text
        assert "warming up" in refused.text

        # Stopped into the warm pool (nothing to deregister), then resumed for the pool.
        evaluate_pool(cp, http, pool["id"], desired_workers=0, retire=[worker_id], retire_then="stop")
        assert worker_detail(cp, http, worker_id)["desired_status"] == "stopped"
        report_status(cp, http, worker_id, "stopped")
        evaluate_pool(cp, http, pool["id"], desired_workers=1, resume=[worker_id])
        resumed = worker_detail(cp, http, worker_id)
        assert (resumed["park_when_ready"], resumed["desired_status"]) == (False, "running")
        assert resumed["license"]["register_when_available"] is True
        report_status(cp, http, worker_id, "running", "available")
        assert worker_detail(cp, http, worker_id)["license"]["status"] == "registering"
