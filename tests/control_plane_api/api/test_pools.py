"""Worker pools against a real CPA (MongoDB-wire, Redis, etcd): CRUD and roles, uniqueness of names and tracks,
bounds, the decision history, the autoscaler's evaluations (version check, launches, replay, retire), the
sessions waiting for a pool, adopt and release, and the `pool.*` events."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from lcm_core.domain.pools import HISTORY_LIMIT, PoolView, PoolWork
from tests.fixtures.control_plane import ControlPlaneUnderTest
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, decision, ready_workers
from tests.fixtures.mongo import mongo_client
from tests.fixtures.pool_api import (
    SPEC,
    adopt_licensed,
    create_pool,
    create_template,
    place_session,
    report_licence,
)
from tests.fixtures.sse import SseClient


def _evaluation(pool: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"expected_version": pool["version"], "observed_at": datetime.now(UTC).isoformat(),
            "phase": "initializing", "capacity": {}, "desired_workers": pool["desired_workers"], **fields}


def _evaluate(cp: ControlPlaneUnderTest, http: httpx.Client, pool_id: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(f"/api/internal/pools/{pool_id}/evaluation", headers=cp.leader(), json=body)


def test_pool_crud_and_roles(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        assert http.get("/api/pools").status_code == 401
        assert http.post("/api/pools", headers=cp.viewer(), json=SPEC).status_code == 403
        created = create_pool(cp, http, description="CCNA labs")
        assert (created["phase"], created["desired_workers"], created["version"]) == ("pending", 0, 1)
        assert cp.etcd_json(f"pools/{created['id']}/desired") == {"pool_id": created["id"], "version": 1}
        pool_id = created["id"]
        listed = http.get("/api/pools", headers=cp.viewer()).json()
        assert (listed["total"], [p["name"] for p in listed["items"]]) == (1, ["ccna-pool"])
        detail = http.get(f"/api/pools/{pool_id}", headers=cp.viewer()).json()
        assert (detail["pool"]["id"], detail["workers"]) == (pool_id, [])
        assert http.get("/api/pools/nope", headers=cp.viewer()).status_code == 404

        change = {"spec": {**SPEC, "scaling": {"min_workers": 1, "max_workers": 3}}, "spec_version": 1}
        assert http.put(f"/api/pools/{pool_id}", headers=cp.viewer(), json=change).status_code == 403
        updated = http.put(f"/api/pools/{pool_id}", headers=cp.admin(), json=change)
        assert updated.status_code == 200, updated.text
        assert (updated.json()["desired_workers"], updated.json()["version"]) == (1, 2)
        stale = http.put(f"/api/pools/{pool_id}", headers=cp.admin(), json=change)
        assert stale.status_code == 409
        assert "changed since spec_version 1" in stale.json()["detail"]

        for action, draining in (("drain", True), ("undrain", False)):
            assert http.post(f"/api/pools/{pool_id}/{action}", headers=cp.viewer()).status_code == 403
            answer = http.post(f"/api/pools/{pool_id}/{action}", headers=cp.admin())
            assert answer.status_code == 200, answer.text
            assert answer.json()["draining"] is draining

        assert http.delete(f"/api/pools/{pool_id}", headers=cp.viewer()).status_code == 403
        deleted = http.delete(f"/api/pools/{pool_id}", headers=cp.admin())
        assert deleted.status_code == 202
        assert (deleted.json()["deleting"], deleted.json()["phase"]) == (True, "terminated")  # it never had a worker
        assert http.delete(f"/api/pools/{pool_id}", headers=cp.admin()).status_code == 202
        assert http.post(f"/api/pools/{pool_id}/drain", headers=cp.admin()).status_code == 409
        assert http.get("/api/pools", headers=cp.viewer()).json()["total"] == 0
        everything = http.get("/api/pools", headers=cp.viewer(), params={"include_terminated": "true"}).json()
        assert [p["id"] for p in everything["items"]] == [pool_id]
        assert cp.etcd_json(f"pools/{pool_id}/desired") is None
        assert create_pool(cp, http)["id"] != pool_id  # the name and the track are free again


def test_names_and_tracks_are_unique_and_inputs_bounded(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        first = create_pool(cp, http)
        same_name = http.post("/api/pools", headers=cp.admin(), json={**SPEC, "lab_track": "ccnp"})
        assert same_name.status_code == 409
        assert same_name.json()["detail"] == f"a pool named 'ccna-pool' already exists (pool {first['id']})"
        same_track = http.post("/api/pools", headers=cp.admin(), json={**SPEC, "name": "other"})
        assert same_track.status_code == 409
        assert "lab track 'ccna' already has a pool, 'ccna-pool'" in same_track.json()["detail"]
        second = create_pool(cp, http, name="ccnp-pool", lab_track="ccnp")
        renamed = http.put(f"/api/pools/{second['id']}", headers=cp.admin(),
                           json={"spec": {**SPEC, "lab_track": "ccnp"}, "spec_version": second["spec_version"]})
        assert renamed.status_code == 409
        assert "a pool named 'ccna-pool' already exists" in renamed.json()["detail"]

        unknown = http.post("/api/pools", headers=cp.admin(), json={**SPEC, "name": "x", "lab_track": "x",
                                                                     "template_name": "missing"})
        assert unknown.status_code == 422
        assert "template 'missing' does not exist" in unknown.json()["detail"][0]["msg"]
        unplaced = http.post("/api/pools", headers=cp.admin(), json={**SPEC, "name": "x", "lab_track": "x",
                                                                      "regions": ["ap-south-1"]})
        assert unplaced.status_code == 422
        assert "no placement for ap-south-1" in unplaced.json()["detail"][0]["msg"]
        inverted = http.post("/api/pools", headers=cp.admin(),
                             json={**SPEC, "name": "x", "lab_track": "x", "scaling": {"min_workers": 5,
                                                                                       "max_workers": 2}})
        assert inverted.status_code == 422
        offset = http.post("/api/pools", headers=cp.admin(), json={**SPEC, "name": "x", "lab_track": "x", "scaling": {
            "policy": "scheduled",
            "allowed_hours": {"start": "08:00+05:00", "end": "17:00", "timezone": "Asia/Tokyo"}}})
        assert offset.status_code == 422
        assert "without an offset" in offset.json()["detail"][0]["msg"]
        too_many = http.post(f"/api/pools/{first['id']}/scale", headers=cp.admin(), json={"workers": 5})
        assert too_many.status_code == 422
        assert "between 0 and 4 workers" in too_many.json()["detail"][0]["msg"]
        assert http.post(f"/api/pools/{first['id']}/scale", headers=cp.admin(),
                         json={"workers": -1}).status_code == 422


def test_concurrent_creates_of_one_pool_store_it_once(control_plane, mongo_server) -> None:
    """The unique indexes decide a race that the application's check cannot see."""
    cp = control_plane
    with mongo_client(mongo_server) as mongo:
        pools = mongo[cp.settings.mongodb_database]["worker_pools"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                "live_track" in dict(index["key"]) for index in pools.index_information().values()):
            time.sleep(0.1)

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=cp.url, timeout=10) as http:
            return await asyncio.gather(*(http.post("/api/pools", headers=cp.admin(),
                                                    json={**SPEC, "name": f"pool-{n}"}) for n in range(6)))

    with cp.client() as http:
        create_template(cp, http)
    answers = asyncio.run(race())
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    assert all("lab track 'ccna'" in a.json()["detail"] for a in answers if a.status_code == 409)
    with cp.client() as http:
        assert http.get("/api/pools", headers=cp.viewer()).json()["total"] == 1


def test_an_edit_is_refused_only_for_another_change_of_the_spec(control_plane) -> None:
    """The autoscaler's reports move the pool's version every few seconds; an operator's edit names the
    spec_version it read, which only edits move."""
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        assert pool["spec_version"] == 1
        reported = _evaluate(cp, http, pool["id"], _evaluation(pool, capacity={"workers": 1}, phase="ready"))
        assert reported.status_code == 200, reported.text
        assert reported.json()["version"] > pool["version"]
        edit = {"spec": {**SPEC, "description": "kept while the autoscaler reports"}, "spec_version": 1}
        saved = http.put(f"/api/pools/{pool['id']}", headers=cp.admin(), json=edit)
        assert saved.status_code == 200, saved.text
        assert (saved.json()["spec_version"], saved.json()["description"]) == (2, "kept while the autoscaler reports")
        again = http.put(f"/api/pools/{pool['id']}", headers=cp.admin(), json=edit)
        assert again.status_code == 409


def test_history_is_newest_first_and_bounded(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http, scaling={"min_workers": 0, "max_workers": 100})
        for n in range(1, HISTORY_LIMIT + 6):
            answer = http.post(f"/api/pools/{pool['id']}/scale", headers=cp.admin(), json={"workers": n})
            assert answer.status_code == 200, answer.text
        history = http.get(f"/api/pools/{pool['id']}/history", headers=cp.viewer()).json()
        assert len(history) == HISTORY_LIMIT
        assert [d["to_workers"] for d in history[:2]] == [HISTORY_LIMIT + 5, HISTORY_LIMIT + 4]
        assert history[-1]["to_workers"] == 6
        assert (history[0]["trigger"], history[0]["by"]) == ("manual", "test-admin")
        shown = http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()).json()["pool"]
        assert shown["last_scale_up_at"] is not None
        assert shown["last_decision"]["to_workers"] == HISTORY_LIMIT + 5


def test_an_evaluation_launches_workers_once_and_a_stale_one_is_refused(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        body = _evaluation(pool, desired_workers=2, launch=["us-east-1", "us-east-1"],
                           decision={"at": datetime.now(UTC).isoformat(), "action": "scale_up", "trigger": "policy",
                                     "from_workers": 0, "to_workers": 2, "reason": "two sessions wait"})
        assert http.post(f"/api/internal/pools/{pool['id']}/evaluation", headers=cp.internal(),
                         json=body).status_code == 409  # no leader epoch
        recorded = _evaluate(cp, http, pool["id"], body)
        assert recorded.status_code == 200, recorded.text
        view = PoolView.model_validate(recorded.json())
        assert (view.launches, view.desired_workers, view.phase.value, view.version) == (2, 2, "initializing", 2)
        replay = _evaluate(cp, http, pool["id"], body)
        assert replay.status_code == 200, replay.text
        assert replay.json()["version"] == 2
        work = PoolWork.model_validate(http.get(f"/api/internal/pools/{pool['id']}", headers=cp.internal()).json())
        assert sorted(w.name for w in work.workers) == ["ccna-pool-000", "ccna-pool-001"]
        assert {(w.pool_id, w.lab_track, w.status.value) for w in work.workers} == {(pool["id"], "ccna", "pending")}
        assert (work.template_found, work.template_regions) == (True, ["eu-west-1", "us-east-1"])
        for row in work.workers:
            worker = http.get(f"/api/workers/{row.id}", headers=cp.viewer()).json()
            assert (worker["template_name"], worker["license"]["register_when_available"]) == ("standard", True)
        assert http.get("/api/workers", headers=cp.viewer()).json()["total"] == 2

        stale = _evaluate(cp, http, pool["id"], _evaluation(pool))
        assert stale.status_code == 409
        huge = _evaluate(cp, http, pool["id"], {**_evaluation(pool), "expected_version": 10**30})
        assert huge.status_code == 422, huge.text  # a version no pool can have is bad input, not a conflict
        assert "changed since the autoscaler read it" in stale.json()["detail"]
        internal = http.get("/api/internal/pools", headers=cp.internal()).json()
        assert [p["id"] for p in internal["items"]] == [pool["id"]]


def test_retire_drains_a_running_member_and_adopt_and_release(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        assert http.post(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.viewer()).status_code == 403
        adopted = http.post(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin())
        assert adopted.status_code == 200, adopted.text
        assert [w["id"] for w in adopted.json()["workers"]] == [worker_id]
        assert adopted.json()["workers"][0]["lab_track"] == "ccna"
        other = create_pool(cp, http, name="ccnp-pool", lab_track="ccnp")
        assert http.post(f"/api/pools/{other['id']}/workers/{worker_id}", headers=cp.admin()).status_code == 409
        assert http.post(f"/api/pools/{pool['id']}/workers/nope", headers=cp.admin()).status_code == 404

        pool = adopted.json()["pool"]
        retired = _evaluate(cp, http, pool["id"], _evaluation(pool, phase="scaling_down", retire=[worker_id],
                                                               retire_then="stop"))
        assert retired.status_code == 200, retired.text
        worker = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()
        assert worker["drain"]["then"] == "stopped"
        assert (worker["status"], worker["desired_status"]) == ("draining", "stopped")  # no session: on its way

        released = http.delete(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin())
        assert released.status_code == 200, released.text
        assert released.json()["workers"] == []
        worker = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()
        assert (worker["pool_id"], worker["lab_track"]) == (None, None)
        assert http.delete(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin()).status_code == 200


def test_a_pool_set_to_terminate_retires_its_members_to_termination(control_plane) -> None:
    """`retire_then: terminate` (the pool's `scale_down_action`): the member is drained, then terminated."""
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http, scaling={"min_workers": 0, "max_workers": 4, "scale_down_action": "terminate"})
        assert http.post(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin()).status_code == 200
        pool = http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()).json()["pool"]
        retired = _evaluate(cp, http, pool["id"], _evaluation(pool, phase="scaling_down", retire=[worker_id],
                                                               retire_then="terminate"))
        assert retired.status_code == 200, retired.text
        worker = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()
        assert (worker["drain"]["then"], worker["desired_status"]) == ("terminated", "terminated")


def test_a_members_lab_track_is_its_pools(control_plane) -> None:
    """A member serves its pool's track: an operator cannot point it at another while it is in the pool (the
    pool would count that track's sessions as its own), only the pool's edit moves it; once released it can."""
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        assert http.post(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin()).status_code == 200
        for track in ("ccnp", None):
            refused = http.put(f"/api/workers/{worker_id}/lab-track", headers=cp.admin(), json={"lab_track": track})
            assert refused.status_code == 409, refused.text
            assert f"member of pool {pool['id']}" in refused.json()["detail"]
        same = http.put(f"/api/workers/{worker_id}/lab-track", headers=cp.admin(), json={"lab_track": "ccna"})
        assert same.status_code == 200, same.text
        moved = http.put(f"/api/pools/{pool['id']}", headers=cp.admin(),
                         json={"spec": {**SPEC, "lab_track": "ccna-v2"}, "spec_version": pool["spec_version"]})
        assert moved.status_code == 200, moved.text
        worker = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()
        assert (worker["pool_id"], worker["lab_track"]) == (pool["id"], "ccna-v2")
        assert http.delete(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin()).status_code == 200
        freed = http.put(f"/api/workers/{worker_id}/lab-track", headers=cp.admin(), json={"lab_track": "ccnp"})
        assert freed.status_code == 200, freed.text
        assert freed.json()["lab_track"] == "ccnp"


def test_a_session_waiting_for_a_pool_is_its_waiting_demand(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
    definition = create_definition(cp)
    session = create_session(cp, definition["id"])
    waiting = {"worker_id": None, "decision": {**decision(None, "no worker fits"), "waiting_for_pool": pool["id"]}}
    with cp.client() as http:
        answer = http.post(f"/api/internal/lablet-sessions/{session['id']}/schedule", headers=cp.leader(LABLET),
                           json=waiting)
        assert answer.status_code == 200, answer.text
        stored = http.get(f"/api/lablet-sessions/{session['id']}", headers=cp.viewer()).json()
        assert (stored["status"], stored["last_decision"]["waiting_for_pool"]) == ("pending", pool["id"])
        work = http.get(f"/api/internal/pools/{pool['id']}", headers=cp.internal()).json()
    needs = definition["resource_requirements"]
    assert work["waiting"] == {"sessions": 1, "cpu_cores": needs["cpu_cores"], "memory_gb": needs["memory_gb"],
                               "too_large": 0}
    request = cp.etcd_json(f"pools/{pool['id']}/capacity_request")
    assert request is not None
    assert (request["pool_id"], request["session_id"]) == (pool["id"], session["id"])


def test_a_waiting_session_larger_than_an_empty_worker_is_not_the_pools_demand(control_plane) -> None:
    """A session that needs more than an empty worker of the pool's template has (64 cores on 48) is counted
    apart: given room, the pool launched workers it could never use each time its empty ones were filled."""
    cp = control_plane
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
    small = create_definition(cp)
    large = create_definition(cp, name="ccna-huge", resource_requirements={"cpu_cores": 64, "memory_gb": 8})
    with cp.client() as http:
        for definition in (small, large):
            session = create_session(cp, definition["id"])
            waiting = {"worker_id": None,
                       "decision": {**decision(None, "no worker fits"), "waiting_for_pool": pool["id"]}}
            answer = http.post(f"/api/internal/lablet-sessions/{session['id']}/schedule", headers=cp.leader(LABLET),
                               json=waiting)
            assert answer.status_code == 200, answer.text
        work = http.get(f"/api/internal/pools/{pool['id']}", headers=cp.internal()).json()
    needs = small["resource_requirements"]
    assert work["waiting"] == {"sessions": 1, "cpu_cores": needs["cpu_cores"], "memory_gb": needs["memory_gb"],
                               "too_large": 1}


def test_pool_events_carry_the_pool(control_plane) -> None:
    cp = control_plane
    with SseClient(f"{cp.url}/api/events/stream", cp.viewer(), params={"event_types": "pool.*"}) as sse, \
            cp.client() as http:
        sse.next()  # snapshot
        create_template(cp, http)
        pool = create_pool(cp, http)
        http.post(f"/api/pools/{pool['id']}/scale", headers=cp.admin(), json={"workers": 2})
        created, scaled = sse.frame(timeout=3.0), sse.next(timeout=3.0)
    assert created is not None
    assert scaled is not None
    assert (created.event, created.data["data"]["pool"]["name"]) == ("pool.created", "ccna-pool")
    assert scaled.event == "pool.scaled"
    assert (scaled.data["data"]["pool"]["desired_workers"], scaled.data["data"]["pool"]["version"]) == (2, 2)
    assert scaled.data["data"]["decision"]["trigger"] == "manual"


def test_terminate_drains_then_terminates_members_whatever_retire_then_says(control_plane) -> None:
    """The evaluation's `terminate`: a parked (stopped) member is terminated; a running one is drained, its
    session ends on its own, then it is terminated; its licence is left to the worker-controller, which
    releases it before the instance goes (the CPA takes no shortcut: nothing says terminated while licensed)."""
    cp = control_plane
    running, parked = ready_workers(cp, 2)
    definition = create_definition(cp)
    session = create_session(cp, definition["id"])
    with cp.client() as http:
        create_template(cp, http)
        pool = create_pool(cp, http)
        for worker_id in (running, parked):
            adopt_licensed(cp, http, pool["id"], worker_id)
        place_session(cp, http, session["id"], running)
        assert http.post(f"/api/workers/{parked}/stop", headers=cp.admin()).status_code == 200
        report_licence(cp, http, parked, "deregistering")  # released before the stop, as the controller does
        report_licence(cp, http, parked, "unregistered")
        http.post(f"/api/internal/workers/{parked}/status", headers=cp.leader(),
                  json={"ec2_state": "stopped"}).raise_for_status()
        pool = http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()).json()["pool"]

        both = _evaluate(cp, http, pool["id"], _evaluation(pool, resume=[parked], terminate=[parked]))
        assert both.status_code == 422
        assert "both resume and terminate" in both.text
        answer = _evaluate(cp, http, pool["id"], _evaluation(pool, phase="scaling_down", retire_then="stop",
                                                             retire=[running], terminate=[running, parked]))
        assert answer.status_code == 200, answer.text
        held = http.get(f"/api/workers/{running}", headers=cp.viewer()).json()
        gone = http.get(f"/api/workers/{parked}", headers=cp.viewer()).json()
        assert (gone["status"], gone["desired_status"]) == ("stopped", "terminated")
        assert (held["status"], held["drain"]["then"], held["desired_status"]) == ("draining", "terminated", None)
        assert held["license"]["status"] == "registered"  # its session still runs: nothing happens to it yet

        ended = http.post(f"/api/lablet-sessions/{session['id']}/terminate", headers=cp.admin())
        assert ended.status_code == 200, ended.text
        drained = http.get(f"/api/workers/{running}", headers=cp.viewer()).json()
        assert (drained["desired_status"], drained["license"]["status"]) == ("terminated", "registered")
        assert cp.etcd_json(f"workers/{running}/desired_state")["desired_status"] == "terminated"
        report_licence(cp, http, running, "deregistering")
        report_licence(cp, http, running, "unregistered")
        for worker_id in (running, parked):
            http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                      json={"ec2_state": "terminated"}).raise_for_status()
            worker = http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).json()
            assert (worker["status"], worker["license"]["status"]) == ("terminated", "unregistered")
            assert worker["license"]["last_error"] is None  # no licence left behind in Smart Software Manager
