"""Undraining a pool against a real CPA (MongoDB-wire, Redis, etcd): the members its drain retired and sessions
still hold are recalled (their drain cancelled, their licence untouched), so that the autoscaler counts them
again instead of launching workers in their place; a worker an operator drained himself stays drained."""

from __future__ import annotations

from tests.control_plane_api.api.test_pools import _evaluate, _evaluation, _licensed, _pool, _template
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, decision, ready_workers


def test_undraining_a_pool_recalls_the_members_its_drain_retired(control_plane) -> None:
    cp = control_plane
    retired, own_drain = ready_workers(cp, 2)
    definition = create_definition(cp)
    with cp.client() as http:
        _template(cp, http)
        pool = _pool(cp, http)
        for worker_id in (retired, own_drain):
            _licensed(cp, http, worker_id)
            assert http.post(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin()).status_code == 200
            session = create_session(cp, definition["id"])
            scheduled = http.post(f"/api/internal/lablet-sessions/{session['id']}/schedule",
                                  headers=cp.leader(LABLET), json={"worker_id": worker_id,
                                                                   "decision": decision(worker_id)})
            assert scheduled.status_code == 200, scheduled.text
        drained = http.post(f"/api/workers/{own_drain}/drain", headers=cp.admin(),
                            json={"then": "stopped", "reason": "maintenance"})
        assert drained.status_code == 200, drained.text

        pool = http.post(f"/api/pools/{pool['id']}/drain", headers=cp.admin()).json()
        assert pool["draining"] is True
        # What the autoscaler does with a drained pool: its serving members are retired (drained, then stopped).
        answer = _evaluate(cp, http, pool["id"], _evaluation(pool, phase="draining", retire=[retired],
                                                             retire_then="stop"))
        assert answer.status_code == 200, answer.text
        held = http.get(f"/api/workers/{retired}", headers=cp.viewer()).json()
        assert (held["status"], held["drain"]["then"], held["drain"]["pool_id"]) == ("draining", "stopped", pool["id"])

        undrained = http.post(f"/api/pools/{pool['id']}/undrain", headers=cp.admin())
        assert undrained.status_code == 200, undrained.text
        assert undrained.json()["draining"] is False
        back = http.get(f"/api/workers/{retired}", headers=cp.viewer()).json()
        assert (back["status"], back["desired_status"], back["drain"]) == ("running", held["desired_status"], None)
        assert (back["pool_id"], back["license"]["status"]) == (pool["id"], "registered")
        kept = http.get(f"/api/workers/{own_drain}", headers=cp.viewer()).json()
        assert (kept["status"], kept["drain"]["then"], kept["drain"]["reason"]) == ("draining", "stopped",
                                                                                    "maintenance")
