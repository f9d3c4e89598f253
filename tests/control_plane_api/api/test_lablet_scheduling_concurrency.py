"""The acceptance's concurrency guarantee, against two real CPA replicas sharing MongoDB-wire and etcd:
200 sessions scheduled at once on 20 workers, every session trying workers in its own shuffled order and
moving on (or retrying a lost race) on 409. No worker is over capacity, no port is given twice on a worker,
every session is scheduled or pending with a reason; releases under concurrency happen exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict

import httpx

from tests.fixtures.control_plane import build_settings, post_as_controller
from tests.fixtures.lablet_api import LABLET, create_definition, ready_workers, schedule_body, timeslot

WORKERS = 20
SESSIONS = 200
EPSILON = 1e-6
async def _schedule_one(http: httpx.AsyncClient, headers: dict[str, str], session_id: str,
                        workers: list[str], rng: random.Random) -> dict:
    order = workers[:]
    rng.shuffle(order)
    tried = 0
    for worker_id in order:
        while True:
            answer = await post_as_controller(http, f"/api/internal/lablet-sessions/{session_id}/schedule", headers,
                                 schedule_body(worker_id))
            if answer.status_code == 200:
                return answer.json()
            assert answer.status_code == 409, answer.text
            if "re-read and retry" not in answer.json()["detail"]:
                break  # the worker lacks capacity or ports: next candidate
        tried += 1
    answer = await post_as_controller(http, f"/api/internal/lablet-sessions/{session_id}/schedule", headers,
                         schedule_body(None, f"no capacity on any of {tried} workers"))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _check_ledger(workers: dict[str, dict], sessions: dict[str, dict], needs: dict[str, dict]) -> None:
    on_worker: dict[str, list[str]] = defaultdict(list)
    for sid, session in sessions.items():
        if session["status"] == "scheduled":
            on_worker[session["worker_id"]].append(sid)
    for worker_id, worker in workers.items():
        capacity = worker["capacity"]
        declared, allocated = capacity["declared"], capacity["allocated"]
        held = on_worker[worker_id]
        for key, need in (("cpu_cores", "cpu_cores"), ("memory_gb", "memory_gb"), ("storage_gb", "storage_gb"),
                          ("max_nodes", "node_count")):
            assert allocated[key] <= declared[key] + EPSILON, f"{worker_id} over capacity on {key}"
            total = sum(needs[sessions[s]["definition_id"]][need] for s in held)
            assert abs(total - allocated[key]) < EPSILON, f"{worker_id}: {key} {allocated[key]} != sessions {total}"
        assert sorted(capacity["port_allocations"]) == sorted(held)
        ports = [p for sid in held for p in capacity["port_allocations"][sid].values()]
        duplicates = [p for p, n in Counter(ports).items() if n > 1]
        assert not duplicates, f"ports given twice on {worker_id}: {duplicates}"
        assert all(5000 <= p <= 5039 for p in ports)
        for sid in held:
            assert sessions[sid]["allocated_ports"] == capacity["port_allocations"][sid]


def test_200_sessions_on_20_workers_across_two_replicas(control_plane_factory, tmp_path, mongo_server,
                                                        redis_server, etcd_server) -> None:
    settings = build_settings(tmp_path, mongo_server, f"redis://{redis_server.address}/0", etcd_server,
                              LABLET_PORT_RANGE_START=5000, LABLET_PORT_RANGE_END=5039)
    first, second = control_plane_factory(settings), control_plane_factory(settings)
    workers = ready_workers(first, WORKERS)
    small = create_definition(first, "small")  # 3 cores, 2.5 GB, 10 GB, 3 nodes, 4 ports
    heavy = create_definition(first, "heavy", resource_requirements={
        "cpu_cores": 12, "memory_gb": 48, "storage_gb": 60, "node_count": 6})
    needs = {d["id"]: d["resource_requirements"] for d in (small, heavy)}
    headers = first.leader(LABLET)
    second.epochs[LABLET] = first.epochs[LABLET]  # same etcd prefix: one lablet-controller leader

    async def run() -> dict[str, dict]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=first.url, timeout=60, limits=limits) as one, \
                httpx.AsyncClient(base_url=second.url, timeout=60, limits=limits) as two:
            created = await asyncio.gather(*(
                (one if i % 2 else two).post("/api/lablet-sessions", headers=first.admin(), json={
                    "definition_id": (heavy if i % 4 == 0 else small)["id"], **timeslot()})
                for i in range(SESSIONS)))
            assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201]
            ids = [r.json()["id"] for r in created]
            results = await asyncio.gather(*(
                _schedule_one(one if i % 2 else two, headers, sid, workers, random.Random(i))
                for i, sid in enumerate(ids)))
            return {r["id"]: r for r in results}

    results = asyncio.run(run())
    with first.client() as http:
        sessions = {s["id"]: s for s in http.get("/api/lablet-sessions", headers=first.viewer(),
                                                 params={"limit": 1000}).json()["items"]}
        state = {w: http.get(f"/api/internal/workers/{w}", headers=first.internal()).json() for w in workers}
    assert len(sessions) == SESSIONS
    assert {s["status"] for s in sessions.values()} <= {"scheduled", "pending"}
    for sid, session in sessions.items():
        assert session["status"] == results[sid]["status"]
        if session["status"] == "pending":
            assert session["pending_reason"].startswith("no capacity on any of 20 workers")
    scheduled = [s for s in sessions.values() if s["status"] == "scheduled"]
    # Demand exceeds supply (ports: 20 x 40 for 200 x 4; CPU: 1,050 cores for 960): some wait, most are placed.
    assert 150 <= len(scheduled) < SESSIONS
    _check_ledger(state, sessions, needs)
    for session in sessions.values():
        if session["status"] == "pending":  # nothing left anywhere that would have fit it
            need = needs[session["definition_id"]]
            for worker in state.values():
                free = {k: worker["capacity"]["declared"][k] - worker["capacity"]["allocated"][k]
                        for k in ("cpu_cores", "memory_gb", "storage_gb", "max_nodes")}
                ports_free = 40 - sum(len(p) for p in worker["capacity"]["port_allocations"].values())
                fits = (need["cpu_cores"] <= free["cpu_cores"] and need["memory_gb"] <= free["memory_gb"]
                        and need["storage_gb"] <= free["storage_gb"] and need["node_count"] <= free["max_nodes"]
                        and ports_free >= 4)
                assert not fits, f"pending session {session['id']} would fit on {worker['id']}"

    # Release half of them, each twice at once through both replicas: capacity comes back exactly once.
    leaving = [s["id"] for s in scheduled[::2]]

    async def terminate() -> None:
        async with httpx.AsyncClient(base_url=first.url, timeout=60) as one, \
                httpx.AsyncClient(base_url=second.url, timeout=60) as two:
            answers = await asyncio.gather(*(
                post_as_controller(client, f"/api/internal/lablet-sessions/{sid}/transition", headers,
                      {"to": "terminated", "reason": "load test over"})
                for sid in leaving for client in (one, two)))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]

    asyncio.run(terminate())
    with first.client() as http:
        sessions = {s["id"]: s for s in http.get("/api/lablet-sessions", headers=first.viewer(),
                                                 params={"limit": 1000}).json()["items"]}
        state = {w: http.get(f"/api/internal/workers/{w}", headers=first.internal()).json() for w in workers}
    assert sum(s["status"] == "terminated" for s in sessions.values()) == len(leaving)
    _check_ledger(state, sessions, needs)
