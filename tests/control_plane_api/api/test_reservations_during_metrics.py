"""Capacity reservations made while a metrics cycle of 200 workers is being stored never lose a race to it:
the cycle writes each worker's telemetry apart from the versioned worker document, so the reservations'
read-modify-writes of those workers retry zero times (`lcm_version_conflicts_total{aggregate="worker"}`)."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.fixtures.control_plane import ControlPlaneUnderTest, post_as_controller
from tests.fixtures.lablet_api import LABLET, create_definition, ready_workers, schedule_body, timeslot
from tests.fixtures.metrics import BATCH, report

WORKERS = 200
BATCHES = 8  # the cycle's 200 reports go out in batches of 25, as the worker-controller streams them


def worker_conflicts(cp: ControlPlaneUnderTest) -> dict[str, float]:
    """`lcm_version_conflicts_total` by aggregate, from the Prometheus scrape."""
    with cp.client() as http:
        text = http.get("/metrics", headers=cp.internal()).text
    found = re.findall(r'^lcm_version_conflicts_total\{aggregate="([a-z_]+)"\} ([0-9.e+]+)$', text, re.M)
    return {aggregate: float(value) for aggregate, value in found}


def cycle_reports(workers: list[str], cycle: int) -> list[dict]:
    """A steady cycle: CML answers, utilisation moves a little, nothing the worker decides from changes."""
    return [report(w, ec2={"state": "running", "system_status": "ok", "instance_status": "ok"},
                   cloudwatch={"cpu_utilization": 10.0 + cycle},
                   cml={"ready": True, "all_cpu_percent": 10.0 + cycle + n % 7, "all_memory_total": 1000,
                        "all_memory_used": 300 + n % 50, "running_nodes": n % 3, "labs_count": n % 2})
            for n, w in enumerate(workers)]


def test_reservations_during_a_metrics_cycle_of_200_workers_retry_zero_times(control_plane) -> None:
    cp = control_plane
    workers = ready_workers(cp, WORKERS)
    definition = create_definition(cp, "during-metrics")
    lablet = cp.leader(LABLET)
    leader = cp.leader()
    before = worker_conflicts(cp)

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=cp.url, timeout=120, limits=limits) as http:
            created = await asyncio.gather(*(http.post("/api/lablet-sessions", headers=cp.admin(), json={
                "definition_id": definition["id"], **timeslot()}) for _ in range(WORKERS)))
            assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201]
            reports = cycle_reports(workers, 1)
            size = WORKERS // BATCHES

            async def metrics() -> list[httpx.Response]:
                return [await post_as_controller(http, BATCH, leader, {"reports": reports[i:i + size]})
                        for i in range(0, WORKERS, size)]

            async def reservations() -> list[httpx.Response]:
                # One session on each worker, booked while the cycle's batches are being stored.
                return list(await asyncio.gather(*(
                    post_as_controller(http, f"/api/internal/lablet-sessions/{r.json()['id']}/schedule", lablet,
                                       schedule_body(worker_id))
                    for r, worker_id in zip(created, workers, strict=True))))

            cycle, scheduled = await asyncio.gather(metrics(), reservations())
            return cycle, scheduled

    cycle, scheduled = asyncio.run(run())
    assert all(r.status_code == 200 for r in scheduled), [r.text for r in scheduled if r.status_code != 200]
    assert all(r.json()["status"] == "scheduled" for r in scheduled)
    outcomes = [r.json() for r in cycle]
    assert all(r.status_code == 200 for r in cycle), [r.text for r in cycle if r.status_code != 200]
    assert sum(len(o["updated"]) for o in outcomes) == WORKERS
    assert sum(o["retried"] for o in outcomes) == 0  # no report lost a race either
    after = worker_conflicts(cp)
    assert "worker" in after  # the counter is exported: a missing series would make the check below vacuous
    assert after["worker"] - before.get("worker", 0.0) == 0
    with cp.client() as http:
        rows = http.get("/api/workers", headers=cp.viewer(), params={"limit": 1000}).json()["items"]
    assert sum(row["sessions"] for row in rows) == WORKERS  # every reservation stands
    assert all(row["cpu_percent"] is not None for row in rows)  # and every report was stored
