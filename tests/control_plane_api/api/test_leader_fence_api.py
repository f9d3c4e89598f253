"""The leader fence is bound to the service that owns the route: the worker routes take only the
worker-controller leader's epoch, the lablet routes only the lablet-controller leader's (409 otherwise, with
nothing written), and each service's current leader still gets through. Real CPA, etcd and MongoDB-wire."""

from __future__ import annotations

from tests.fixtures.control_plane import discovered
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, ready_workers, schedule_body

WORKER = "worker-controller"


def test_each_route_takes_only_the_epoch_of_its_own_services_leader(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    session = create_session(cp, create_definition(cp)["id"])
    schedule = f"/api/internal/lablet-sessions/{session['id']}/schedule"
    with cp.client() as http:
        # The lablet-controller leader on worker routes: a status report, an import.
        status = http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(LABLET),
                           json={"ec2_state": "stopped"})
        imported = http.post("/api/internal/workers/bulk-import", headers=cp.leader(LABLET),
                             json={"instances": [discovered(90)]})
        # The worker-controller leader on a lablet route.
        scheduled = http.post(schedule, headers=cp.leader(WORKER), json=schedule_body(worker_id))
        for refused, owner in ((status, WORKER), (imported, WORKER), (scheduled, LABLET)):
            assert refused.status_code == 409, refused.text
            assert f"changed by the {owner} leader only" in refused.json()["detail"]
        worker = http.get(f"/api/internal/workers/{worker_id}", headers=cp.internal()).json()
        assert worker["status"] == "running"
        assert http.get("/api/workers", headers=cp.viewer()).json()["total"] == 1
        assert http.get(f"/api/lablet-sessions/{session['id']}", headers=cp.viewer()).json()["status"] == "pending"

        # Each service's current leader on its own routes.
        assert http.post(schedule, headers=cp.leader(LABLET), json=schedule_body(worker_id)).status_code == 200
        ok = http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(WORKER),
                       json={"ec2_state": "stopped"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "stopped"
        stored = http.get(f"/api/internal/workers/{worker_id}", headers=cp.internal()).json()
        assert stored["state_history"][-1]["by"] == f"{WORKER}@{cp.epochs[WORKER]}"

