"""Undraining a pool against a real CPA (MongoDB-wire, Redis, etcd): the members its drain retired and sessions
still hold are recalled (their drain cancelled, their licence untouched), so that the autoscaler counts them
again instead of launching workers in their place; a worker an operator drained himself stays drained."""

from __future__ import annotations

from tests.fixtures.lablet_api import create_definition, create_session, ready_workers
from tests.fixtures.pool_api import adopt_licensed, create_pool, create_template, evaluate_pool, place_session


def test_undraining_a_pool_recalls_the_members_its_drain_retired(control_plane) -> None:
    cp = control_plane
    retired, own_drain = ready_workers(cp, 2)
    definition = create_definition(cp)
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        for worker_id in (retired, own_drain):
            adopt_licensed(cp, http, pool["id"], worker_id)
            place_session(cp, http, create_session(cp, definition["id"])["id"], worker_id)
        drained = http.post(f"/api/workers/{own_drain}/drain", headers=cp.admin(),
                            json={"then": "stopped", "reason": "maintenance"})
        assert drained.status_code == 200, drained.text

        pool = http.post(f"/api/pools/{pool['id']}/drain", headers=cp.admin()).json()
        assert pool["draining"] is True
        # What the autoscaler does with a drained pool: its serving members are retired (drained, then stopped).
        evaluate_pool(cp, http, pool["id"], desired_workers=pool["desired_workers"], phase="draining",
                      retire=[retired], retire_then="stop")
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


def test_undraining_a_pool_being_deleted_is_refused_and_recalls_no_member(control_plane) -> None:
    """The undrain is refused (409) for a pool being deleted; its members, retired to termination, stay so (they
    were recalled before the refusal)."""
    cp = control_plane
    (retired,) = ready_workers(cp, 1)
    definition = create_definition(cp)
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        adopt_licensed(cp, http, pool["id"], retired)
        place_session(cp, http, create_session(cp, definition["id"])["id"], retired)
        assert http.post(f"/api/pools/{pool['id']}/drain", headers=cp.admin()).status_code == 200
        deleting = http.delete(f"/api/pools/{pool['id']}", headers=cp.admin())
        assert deleting.status_code in (200, 202), deleting.text
        evaluate_pool(cp, http, pool["id"], desired_workers=0, phase="terminating", retire=[retired],
                      retire_then="terminate")
        held = http.get(f"/api/workers/{retired}", headers=cp.viewer()).json()
        assert (held["status"], held["drain"]["then"]) == ("draining", "terminated")

        undrained = http.post(f"/api/pools/{pool['id']}/undrain", headers=cp.admin())
        assert undrained.status_code == 409, undrained.text
        kept = http.get(f"/api/workers/{retired}", headers=cp.viewer()).json()
        assert (kept["status"], kept["drain"]["then"]) == ("draining", "terminated")
