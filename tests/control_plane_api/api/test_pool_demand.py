"""What a pool will need, against a real CPA: the sessions booked on its track in the work the autoscaler reads
(within the look-ahead, pending or holding a worker, of its track only), the template's cost and the default
lead times there, the autoscaler woken by a new booking, and the forecast the pool's page charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx

from lcm_core.domain.pools import PoolForecast, PoolWork
from tests.fixtures.control_plane import ControlPlaneUnderTest
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, ready_workers, schedule_body, timeslot

PRICE = 3.96
TEMPLATE: dict[str, Any] = {"name": "standard", "instance_type": "m5zn.metal", "regions": {"us-east-1": {}},
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200},
            "cost_per_hour_usd": PRICE}
SPEC: dict[str, Any] = {"name": "ccna-pool", "lab_track": "ccna", "template_name": "standard", "regions": ["us-east-1"],
        "scaling": {"min_workers": 0, "max_workers": 4, "look_ahead_minutes": 120, "max_labs_per_worker": 2,
                    "min_labs_per_worker": 1, "provision_lead_minutes": 12, "resume_lead_minutes": 6}}


def _pool(cp: ControlPlaneUnderTest, http: httpx.Client, template: dict[str, Any] | None = None) -> dict[str, Any]:
    assert http.post("/api/templates", headers=cp.admin(), json=template or TEMPLATE).status_code == 201
    answer = http.post("/api/pools", headers=cp.admin(), json=SPEC)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _work(cp: ControlPlaneUnderTest, http: httpx.Client, pool_id: str) -> PoolWork:
    answer = http.get(f"/api/internal/pools/{pool_id}", headers=cp.internal())
    assert answer.status_code == 200, answer.text
    return PoolWork.model_validate(answer.json())


def _license(cp: ControlPlaneUnderTest, http: httpx.Client, worker_id: str) -> None:
    """Registered as the worker-controller reports it: a worker serves sessions licensed only."""
    assert http.post(f"/api/workers/{worker_id}/license/register", headers=cp.admin()).status_code == 200
    done = http.post(f"/api/internal/workers/{worker_id}/license", headers=cp.leader(),
                     json={"status": "registered", "finished": True})
    assert done.status_code == 200, done.text


def _terminate(cp: ControlPlaneUnderTest, http: httpx.Client, session_id: str) -> None:
    answer = http.post(f"/api/lablet-sessions/{session_id}/terminate", headers=cp.admin())
    assert answer.status_code == 200, answer.text


def test_the_work_carries_the_bookings_of_the_track_within_the_look_ahead(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        pool = _pool(cp, http)
    ccna = create_definition(cp)
    ccnp = create_definition(cp, name="ccnp-basic", lab_track="ccnp")
    due = create_session(cp, ccna["id"], **timeslot(60))
    later = create_session(cp, ccna["id"], **timeslot(60, start_in=90))
    held = create_session(cp, ccna["id"], **timeslot(30, start_in=10))
    beyond = create_session(cp, ccna["id"], **timeslot(60, start_in=150))  # starts after the look-ahead
    other_track = create_session(cp, ccnp["id"], **timeslot(60))
    ended = create_session(cp, ccna["id"], **timeslot(60))
    with cp.client() as http:
        scheduled = http.post(f"/api/internal/lablet-sessions/{held['id']}/schedule", headers=cp.leader(LABLET),
                              json=schedule_body(worker_id))
        assert scheduled.status_code == 200, scheduled.text
        _terminate(cp, http, ended["id"])
        work = _work(cp, http, pool["id"])

    assert [b.session_id for b in work.bookings] == [due["id"], held["id"], later["id"]]  # by timeslot start
    assert {beyond["id"], other_track["id"], ended["id"]}.isdisjoint(b.session_id for b in work.bookings)
    needs = ccna["resource_requirements"]
    for booking in work.bookings:
        assert (booking.cpu_cores, booking.memory_gb, booking.definition_id) == (
            needs["cpu_cores"], needs["memory_gb"], ccna["id"])
        assert booking.timeslot_end > work.observed_at
        assert booking.timeslot_start < work.observed_at + timedelta(minutes=SPEC["scaling"]["look_ahead_minutes"])
    assert {b.session_id: b.worker_id for b in work.bookings} == {due["id"]: None, held["id"]: worker_id,
                                                                  later["id"]: None}
    assert work.template_cost_per_hour_usd == PRICE
    assert (work.lead_time.provision_seconds, work.lead_time.resume_seconds) == (12 * 60, 6 * 60)
    assert (work.lead_time.provision_samples, work.lead_time.resume_samples) == (0, 0)


def test_a_booking_of_the_pools_track_wakes_its_autoscaler(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        pool = _pool(cp, http)
    assert cp.etcd_json(f"pools/{pool['id']}/capacity_request") is None
    ccna = create_definition(cp)
    session = create_session(cp, ccna["id"], **timeslot(60, start_in=24 * 60 - 61))  # a class booked for later
    request = cp.etcd_json(f"pools/{pool['id']}/capacity_request")
    assert request is not None
    assert (request["pool_id"], request["session_id"]) == (pool["id"], session["id"])
    assert datetime.fromisoformat(request["at"]) >= datetime.fromisoformat(session["created_at"])

    ccnp = create_definition(cp, name="ccnp-basic", lab_track="ccnp")
    create_session(cp, ccnp["id"])  # a track without a pool: no pool is woken
    assert cp.etcd_json(f"pools/{pool['id']}/capacity_request") == request


def test_the_forecast_steps_the_booked_demand_against_the_pools_workers(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        pool = _pool(cp, http)
        _license(cp, http, worker_id)
        adopted = http.post(f"/api/pools/{pool['id']}/workers/{worker_id}", headers=cp.admin())
        assert adopted.status_code == 200, adopted.text
    ccna = create_definition(cp)
    class_now = timeslot(60)
    for _ in range(3):
        create_session(cp, ccna["id"], **class_now)
    create_session(cp, ccna["id"], **timeslot(60, start_in=30))
    with cp.client() as http:
        answer = http.get(f"/api/pools/{pool['id']}/forecast", headers=cp.viewer())
        assert answer.status_code == 200, answer.text
        forecast = PoolForecast.model_validate(answer.json())
        longer = PoolForecast.model_validate(http.get(f"/api/pools/{pool['id']}/forecast", headers=cp.viewer(),
                                                      params={"hours": 6}).json())

    assert forecast.pool_id == pool["id"]
    assert forecast.look_ahead_minutes == SPEC["scaling"]["look_ahead_minutes"]
    steps = forecast.steps
    assert (steps[0].start, steps[-1].end) == (forecast.at, forecast.at + timedelta(minutes=120))
    assert all(a.end == b.start for a, b in pairwise(steps))
    # 3 sessions now, a 4th from +30 min (held from +15: it is placed and its lab booted before its start, as
    # the autoscaler counts it), the 3 end at +60, the 4th at +90: two labs per worker at most.
    assert [(s.sessions, s.workers) for s in steps] == [(3, 2), (4, 2), (1, 1), (0, 0)]
    for step, minutes in zip(steps[1:], (30 - 15, 60, 90), strict=True):
        assert abs((step.start - forecast.at) - timedelta(minutes=minutes)) < timedelta(seconds=30)
    needs = ccna["resource_requirements"]
    assert steps[1].cpu_cores == round(4 * needs["cpu_cores"], 3)
    assert (forecast.desired_workers, forecast.max_workers, forecast.labs_per_worker) == (0, 4, 2)
    assert (forecast.ready_workers, forecast.parked_workers) == (1, 0)
    assert forecast.cost_per_hour_usd == PRICE  # the one worker counted
    assert (forecast.lead_time.provision_seconds, forecast.lead_time.resume_seconds) == (12 * 60, 6 * 60)
    assert longer.look_ahead_minutes == 360
    assert longer.steps[-1].end == longer.at + timedelta(hours=6)
    assert longer.steps[-1].sessions == 0


def test_the_forecast_of_an_unpriced_template_has_no_cost_and_its_input_is_bounded(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        pool = _pool(cp, http, template={k: v for k, v in TEMPLATE.items() if k != "cost_per_hour_usd"})
        route = f"/api/pools/{pool['id']}/forecast"
        assert http.get(route).status_code == 401
        assert http.get(route, headers={"Authorization": f"Bearer {cp.nobody_token}"}).status_code == 403
        assert http.get("/api/pools/nope/forecast", headers=cp.viewer()).status_code == 404
        for hours in ("0", "169", "-1", "nan", "inf", "soon"):
            answer = http.get(route, headers=cp.viewer(), params={"hours": hours})
            assert answer.status_code == 422, (hours, answer.text)
        answer = http.get(route, headers=cp.viewer(), params={"hours": "1.5"})
        assert answer.status_code == 200, answer.text
        forecast = PoolForecast.model_validate(answer.json())
        work = _work(cp, http, pool["id"])
    assert forecast.cost_per_hour_usd is None
    assert work.template_cost_per_hour_usd is None
    assert forecast.look_ahead_minutes == 90
    assert [(s.sessions, s.workers) for s in forecast.steps] == [(0, 0)]
    assert forecast.steps[0].end - forecast.steps[0].start == timedelta(minutes=90)
    assert forecast.at <= datetime.now(UTC)
