"""The lablet gateway speaks the contract of docs/lablets.md: paged session lists, contract bodies, the
leader epoch on mutations, definitions cached per version."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import respx

from lablet_controller.infrastructure.control_plane import LabletGateway
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.domain.lablets import LabletSessionStatus, SchedulingDecision

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def session(n: int, status: str = "pending") -> dict[str, object]:
    return {"id": f"s{n}", "status": status, "version": 1, "definition_id": "d1", "definition_version": 2,
            "timeslot_start": NOW.isoformat(), "timeslot_end": (NOW + timedelta(hours=1)).isoformat(),
            "resource_requirements": {"cpu_cores": 2}, "unknown_new_field": True}


async def test_sessions_are_read_page_by_page_with_a_status_filter() -> None:
    items = [session(n) for n in range(5)]
    with respx.mock(base_url="http://cpa") as mock:
        def page(request: httpx.Request) -> httpx.Response:
            offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
            assert request.url.params["status"] == "pending,running"
            return httpx.Response(200, json={"items": items[offset:offset + limit], "total": 5,
                                             "offset": offset, "limit": limit})

        route = mock.get("/api/internal/lablet-sessions").mock(side_effect=page)
        async with ControlPlaneClient("http://cpa", "key") as client:
            found = await LabletGateway(client, page_size=2).sessions(LabletSessionStatus.PENDING,
                                                                      LabletSessionStatus.RUNNING)
    assert [s.id for s in found] == ["s0", "s1", "s2", "s3", "s4"]
    assert route.call_count == 3


async def test_schedule_and_transition_bodies_carry_the_epoch() -> None:
    with respx.mock(base_url="http://cpa") as mock:
        schedule = mock.post("/api/internal/lablet-sessions/s1/schedule").respond(200, json=session(1, "scheduled"))
        transition = mock.post("/api/internal/lablet-sessions/s1/transition").respond(200, json=session(1, "running"))
        async with ControlPlaneClient("http://cpa", "key", epoch_provider=lambda: 42) as client:
            gateway = LabletGateway(client)
            decision = SchedulingDecision(success=True, worker_id="w1", reason="best", candidates_evaluated=3,
                                          latency_ms=0.1, scores={"w1": 1.0})
            assert (await gateway.schedule("s1", "w1", decision)).status is LabletSessionStatus.SCHEDULED
            await gateway.transition("s1", LabletSessionStatus.RUNNING, "timeslot started")
    sent = json.loads(schedule.calls[0].request.content)
    assert sent["worker_id"] == "w1"
    assert sent["decision"]["candidates_evaluated"] == 3
    assert schedule.calls[0].request.headers["X-LCM-Leader-Epoch"] == "42"
    assert json.loads(transition.calls[0].request.content) == {"to": "running", "reason": "timeslot started",
                                                               "error": None}


async def test_definitions_are_cached_per_version() -> None:
    body = {"id": "d1", "name": "ccna", "version": 2, "status": "active", "lab_topology_yaml": "lab: {}",
            "resource_requirements": {"cpu_cores": 1}, "max_duration_minutes": 60}
    with respx.mock(base_url="http://cpa") as mock:
        route = mock.get("/api/internal/lablet-definitions/d1").respond(200, json=body)
        async with ControlPlaneClient("http://cpa", "key") as client:
            gateway = LabletGateway(client)
            await gateway.definition("d1", 2)
            await gateway.definition("d1", 2)
    assert route.call_count == 1
    assert route.calls[0].request.url.params["version"] == "2"


async def test_pools_are_read_as_views() -> None:
    pool = {"id": "p1", "name": "ccna-pool", "lab_track": "ccna", "template_name": "m5zn", "phase": "ready",
            "desired_workers": 2, "scaling": {"policy": "capacity_based", "min_workers": 1, "max_workers": 3},
            "capacity": {"workers": 2, "ready": 1}, "a_field_added_later": True}
    with respx.mock(base_url="http://cpa") as mock:
        route = mock.get("/api/internal/pools").respond(200, json={"items": [pool]})
        async with ControlPlaneClient("http://cpa", "key") as client:
            found = await LabletGateway(client).pools()
    assert route.call_count == 1
    assert [(p.id, p.lab_track, p.scaling.max_workers, p.capacity.workers, p.capacity.ready) for p in found] == [
        ("p1", "ccna", 3, 2, 1)]


async def test_a_control_plane_without_pools_means_no_pools() -> None:
    with respx.mock(base_url="http://cpa") as mock:
        mock.get("/api/internal/pools").respond(404, json={"detail": "Not Found"})
        async with ControlPlaneClient("http://cpa", "key") as client:
            assert await LabletGateway(client).pools() == []
