"""The cost ledger against a real CPA (MongoDB-wire, Redis, etcd): a worker that runs, holds a session, is
paused as idle and stops; a pool's worker retired by a scale-down; the ledger's answer per pool, worker, track
and definition; intervals written at known times answering exact sums; roles, refusals, and the counters."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient, MongoClient

from control_plane_api.domain.cost_ledger import WorkerInterval
from control_plane_api.infrastructure.mongo_costs import IntervalRepository
from lcm_core.domain.costs import CostReportView
from tests.fixtures.control_plane import ControlPlaneUnderTest
from tests.fixtures.lablet_api import LABLET, create_definition, create_session, report_cml_health, schedule_body
from tests.fixtures.metrics import post_reports, report

RATE = 360.0  # $/h: large enough that seconds of running show in four decimals
EBS_PER_HOUR = 500 * 0.08 / 730  # the template's 500 GB gp3 volume
TEMPLATE = {"name": "priced", "instance_type": "m5zn.metal", "regions": {"us-east-1": {}},
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200},
            "ebs": {"volume_type": "gp3", "size_gb": 500}, "cost_per_hour_usd": RATE}
POOL = {"name": "ccna-pool", "lab_track": "ccna", "template_name": "priced", "regions": ["us-east-1"],
        "scaling": {"min_workers": 0, "max_workers": 2}}
SHORT_IDLE_MINUTES = 0.05  # the shortest idle threshold allowed (3 s)


def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def _db(cp: ControlPlaneUnderTest) -> Any:
    client: MongoClient = MongoClient(cp.settings.mongodb_url.get_secret_value(), tz_aware=True)
    return client, client[cp.settings.mongodb_database]


def _intervals(cp: ControlPlaneUnderTest, worker_id: str) -> list[dict[str, Any]]:
    client, db = _db(cp)
    try:
        return list(db["cost_intervals"].find({"worker_id": worker_id}).sort("start", 1))
    finally:
        client.close()


def _holdings(cp: ControlPlaneUnderTest) -> list[dict[str, Any]]:
    client, db = _db(cp)
    try:
        return list(db["cost_holdings"].find({}))
    finally:
        client.close()


def _costs(http: httpx.Client, cp: ControlPlaneUnderTest, **params: Any) -> CostReportView:
    return CostReportView.model_validate(_ok(http.get("/api/costs", headers=cp.viewer(), params=params)))


def _status(cp: ControlPlaneUnderTest, http: httpx.Client, worker_id: str, ec2_state: str, **extra: Any) -> None:
    _ok(http.post(f"/api/internal/workers/{worker_id}/status", headers=cp.leader(),
                  json={"ec2_state": ec2_state, **extra}))


def _seconds(doc: dict[str, Any], now: datetime) -> float:
    return ((doc["end"] or now) - doc["start"]).total_seconds()


def _idle_pause(cp: ControlPlaneUnderTest, http: httpx.Client, worker_id: str) -> None:
    settings = _ok(http.get("/api/settings", headers=cp.viewer()))
    _ok(http.put("/api/settings", headers=cp.admin(), json={"version": settings["version"], "idle": {
        "enabled": True, "threshold_minutes": SHORT_IDLE_MINUTES, "snooze_minutes_after_resume": 0,
        "auto_pause": True}}))
    long_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    idle = report(worker_id, cml={"running_nodes": 0, "last_activity_at": long_ago})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if post_reports(cp, http, idle)["auto_paused"] == [worker_id]:
            return
        time.sleep(0.5)
    raise AssertionError("the worker was not paused as idle")


def _scenario(cp: ControlPlaneUnderTest, http: httpx.Client) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """Worker A (no pool) runs, holds a session, is paused as idle and stops; worker B (pool) runs and is
    retired by a scale-down, then stops. Returns (A, B, the definition, the pool)."""
    _ok(http.post("/api/templates", headers=cp.admin(), json=TEMPLATE), 201)
    alone = _ok(http.post("/api/workers", headers=cp.admin(), json={"template_name": "priced",
                                                                    "aws_region": "us-east-1", "name": "alone"}), 201)
    pool = _ok(http.post("/api/pools", headers=cp.admin(), json=POOL), 201)
    launched = _ok(http.post(f"/api/internal/pools/{pool['id']}/evaluation", headers=cp.leader(), json={
        "expected_version": pool["version"], "observed_at": datetime.now(UTC).isoformat(), "phase": "initializing",
        "capacity": {}, "desired_workers": 1, "launch": ["us-east-1"]}))
    member = _ok(http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()))["workers"][0]
    for worker_id in (alone["id"], member["id"]):
        _status(cp, http, worker_id, "running", service_status="available")
        assert report_cml_health(cp, http, worker_id)["health_status"] == "healthy"

    definition = create_definition(cp)
    session = create_session(cp, definition["id"])
    _ok(http.post(f"/api/internal/lablet-sessions/{session['id']}/schedule", headers=cp.leader(LABLET),
                  json=schedule_body(alone["id"])))
    time.sleep(1.0)  # a second held: its share shows in four decimals
    _ok(http.post(f"/api/lablet-sessions/{session['id']}/terminate", headers=cp.admin(), json={"reason": "done"}))
    _idle_pause(cp, http, alone["id"])
    _status(cp, http, alone["id"], "stopped")

    pool = _ok(http.get(f"/api/pools/{pool['id']}", headers=cp.viewer()))["pool"]
    _ok(http.post(f"/api/internal/pools/{pool['id']}/evaluation", headers=cp.leader(), json={
        "expected_version": launched["version"], "observed_at": datetime.now(UTC).isoformat(),
        "phase": "scaling_down", "capacity": {}, "desired_workers": 0, "retire": [member["id"]],
        "retire_then": "stop"}))
    _status(cp, http, member["id"], "stopped")
    return alone["id"], member["id"], definition, pool


def test_a_worker_paused_as_idle_and_a_pool_worker_scaled_down_in_the_ledger(control_plane) -> None:
    cp = control_plane
    began = datetime.now(UTC) - timedelta(minutes=1)
    with cp.client() as http:
        alone, member, definition, pool = _scenario(cp, http)
        time.sleep(0.5)
        window = {"from": began.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
        by_pool = _costs(http, cp, **window)
        asked = datetime.now(UTC)
        by_worker = _costs(http, cp, group_by="worker", **window)
        answered = datetime.now(UTC)
        by_track = _costs(http, cp, group_by="track", **window)
        by_definition = _costs(http, cp, group_by="definition", bucket="day", **window)
        only_alone = _costs(http, cp, group_by="worker", worker_id=alone, **window)
        only_pool = _costs(http, cp, pool_id=pool["id"], **window)
    now = datetime.now(UTC)

    # What the ledger recorded: running then stopped, priced at the template's prices, and why it stopped.
    a_running, a_stopped = _intervals(cp, alone)
    b_running, b_stopped = _intervals(cp, member)
    assert [(d["state"], d["stop_reason"]) for d in (a_running, a_stopped, b_running, b_stopped)] == [
        ("running", None), ("stopped", "idle_pause"), ("running", None), ("stopped", "scale_down")]
    assert a_running["end"] == a_stopped["start"]
    assert (a_stopped["end"], b_running["pool_id"], b_running["pool_name"]) == (None, pool["id"], "ccna-pool")
    assert (a_running["cost_per_hour_usd"], a_running["priced"]) == (RATE, True)
    assert a_stopped["ebs_cost_per_hour_usd"] == pytest.approx(EBS_PER_HOUR)
    [held] = _holdings(cp)
    assert (held["worker_id"], held["lab_track"], held["definition_id"]) == (alone, "ccna", definition["id"])
    assert held["cpu_cores"] == definition["resource_requirements"]["cpu_cores"]

    def running_cost(doc: dict[str, Any]) -> float:
        return RATE * max(60.0, _seconds(doc, now)) / 3600

    # Per worker: each start billed at least a minute; the stopped time at the EBS price.
    workers = {g.key: g for g in by_worker.groups}
    assert set(workers) == {alone, member}
    assert workers[alone].name == "alone"
    assert workers[alone].running_usd == pytest.approx(running_cost(a_running), abs=2e-4)
    assert workers[alone].stopped_usd == pytest.approx(EBS_PER_HOUR * _seconds(a_stopped, now) / 3600, abs=2e-4)
    # The saving grows by 0.1 $/s while the worker stays stopped: it is what it was at some instant between the
    # request and its answer (a loaded machine takes a while to answer).
    saved_by = [(RATE - EBS_PER_HOUR) * _seconds(a_stopped, at) / 3600 for at in (asked, answered)]
    assert saved_by[0] - 1e-3 <= workers[alone].savings_idle_pause_usd <= saved_by[1] + 1e-3
    assert workers[alone].savings_idle_pause_usd > 0
    assert workers[member].savings_scale_down_usd > 0
    assert workers[member].savings_idle_pause_usd == 0
    assert [g.key for g in only_alone.groups] == [alone]

    # Per pool: the member's pool, and `none` for the worker in no pool.
    pools = {g.key: g for g in by_pool.groups}
    assert set(pools) == {pool["id"], "none"}
    assert pools[pool["id"]].name == "ccna-pool"
    assert pools[pool["id"]].running_usd == pytest.approx(running_cost(b_running), abs=2e-4)
    assert [g.key for g in only_pool.groups] == [pool["id"]]
    assert by_pool.totals.running_usd == pytest.approx(by_worker.totals.running_usd, abs=2e-4)
    assert [g.total_usd for g in by_pool.groups] == sorted((g.total_usd for g in by_pool.groups), reverse=True)

    # Per track and definition: the session's share while it held the worker, the rest is idle.
    share = held["cpu_cores"] / 48
    attributed = RATE * share * _seconds(held, now) / 3600
    tracks = {g.key: g for g in by_track.groups}
    assert set(tracks) == {"ccna", "idle"}
    assert tracks["ccna"].running_usd == pytest.approx(attributed, abs=2e-4)
    assert tracks["ccna"].running_usd > 0
    assert tracks["idle"].running_usd == pytest.approx(by_pool.totals.running_usd - attributed, abs=3e-4)
    assert tracks["idle"].stopped_usd == pytest.approx(by_pool.totals.stopped_usd, abs=2e-4)
    assert by_track.totals.idle_usd == pytest.approx(by_pool.totals.running_usd - attributed, abs=3e-4)
    definitions = {g.key: g for g in by_definition.groups}
    assert definitions[definition["id"]].name == definition["name"]
    assert definitions[definition["id"]].running_usd == pytest.approx(attributed, abs=2e-4)
    assert by_definition.bucket_seconds == 86400
    assert len(by_definition.series.buckets) in (1, 2)
    assert by_pool.series.groups.keys() == {g.key for g in by_pool.groups}
    assert by_pool.currency == "USD"


def _write(cp: ControlPlaneUnderTest, intervals: list[WorkerInterval]) -> None:
    async def run() -> None:
        client: AsyncMongoClient = AsyncMongoClient(cp.settings.mongodb_url.get_secret_value(), tz_aware=True)
        try:
            repository = IntervalRepository(client[cp.settings.mongodb_database]["cost_intervals"])
            for interval in intervals:
                assert await repository.insert(interval)
        finally:
            await client.close()

    asyncio.run(run())


DAY = datetime(2026, 3, 2, tzinfo=UTC)


def _known(worker: str, pool: str | None, state: str, start: float, end: float, **extra: Any) -> WorkerInterval:
    return WorkerInterval.model_validate({
        "id": f"{worker}:{start}", "worker_id": worker, "worker_name": f"name-{worker}", "pool_id": pool,
        "pool_name": pool and f"pool-{pool}", "state": state, "start": DAY + timedelta(hours=start),
        "end": DAY + timedelta(hours=end), "priced": True, "cost_per_hour_usd": 2.0, "ebs_cost_per_hour_usd": 0.1,
        "declared_cpu_cores": 48, **extra})


def test_intervals_at_known_times_answer_exact_sums(control_plane) -> None:
    """Intervals written through the repository on a day in the past: hourly and daily sums, clipping to the
    window, the filters, and savings that stop when the worker runs again."""
    cp = control_plane
    _write(cp, [
        _known("w1", "p1", "running", 1, 3),
        _known("w1", "p1", "stopped", 3, 5, stop_reason="idle_pause"),
        _known("w1", "p1", "running", 5, 6),
        _known("w2", None, "running", 2, 12, priced=False, cost_per_hour_usd=0, ebs_cost_per_hour_usd=0),
        _known("w3", "p1", "running", 0, 1, terminated_reason="scale_down"),
    ])
    with cp.client() as http:
        hourly = _costs(http, cp, **{"from": (DAY + timedelta(hours=2)).isoformat(),
                                     "to": (DAY + timedelta(hours=8)).isoformat()})
        daily = _costs(http, cp, group_by="worker", bucket="day",
                       **{"from": DAY.isoformat(), "to": (DAY + timedelta(days=2)).isoformat()})
        filtered = _costs(http, cp, group_by="worker", pool_id="p1", **{"from": DAY.isoformat(),
                                                                       "to": (DAY + timedelta(days=1)).isoformat()})
    pools = {g.key: g for g in hourly.groups}
    assert pools["p1"].running_usd == 2.0 * 1 + 2.0 * 1  # w1 from 02:00 to 03:00, and 05:00-06:00
    assert pools["p1"].stopped_usd == pytest.approx(0.1 * 2)
    assert pools["p1"].savings_idle_pause_usd == pytest.approx(1.9 * 2)
    assert pools["p1"].savings_scale_down_usd == pytest.approx(2.0 * 6)  # w3's day after: the window's 6 h
    assert (pools["none"].running_usd, pools["none"].running_hours, pools["none"].priced) == (0, 6, False)
    assert hourly.series.buckets[0] == DAY + timedelta(hours=2)
    assert hourly.series.groups["p1"] == [2.0, 0.1, 0.1, 2.0, 0, 0]
    assert hourly.totals.total_usd == pytest.approx(4.2)

    workers = {g.key: g for g in daily.groups}
    assert workers["w1"].running_usd == 2.0 * 3
    assert workers["w3"].running_usd == 2.0
    assert workers["w3"].savings_scale_down_usd == 2.0 * 24
    assert daily.series.groups["w1"] == [6.2, 0]
    assert [g.key for g in daily.groups][:2] == ["w1", "w3"]
    assert {g.key for g in filtered.groups} == {"w1", "w3"}


def test_roles_and_refused_windows(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        assert http.get("/api/costs").status_code == 401
        assert http.get("/api/costs", headers={"Authorization": f"Bearer {cp.nobody_token}"}).status_code == 403
        default = _costs(http, cp)
        assert (default.group_by, default.bucket_seconds, default.groups) == ("pool", 3600, [])
        assert default.to - default.from_ == timedelta(hours=24)
        refused = {
            "no time zone": {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"},
            "not a time": {"from": "yesterday"},
            "out of range": {"from": "1999-12-31T00:00:00Z", "to": "2000-01-02T00:00:00Z"},
            "at the end of time": {"to": "9999-12-31T23:59:59-14:00"},
            "backwards": {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            "too long": {"from": "2025-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z", "bucket": "day"},
            "too many buckets": {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"},
            "unknown grouping": {"group_by": "region"},
            "unknown bucket": {"bucket": "week"},
            "long id": {"pool_id": "p" * 200},
        }
        for why, params in refused.items():
            answer = http.get("/api/costs", headers=cp.viewer(), params=params)
            assert answer.status_code == 422, (why, answer.text)
        message = http.get("/api/costs", headers=cp.viewer(), params=refused["too many buckets"]).json()
        assert "at most 2000" in str(message["detail"])


_SAMPLE = re.compile(r'^(lcm_cost_usd_total|lcm_cost_savings_usd_total)\{([^}]*)\} (\S+)$', re.MULTILINE)


def _counters(http: httpx.Client, cp: ControlPlaneUnderTest) -> dict[tuple[str, str], float]:
    text = http.get("/metrics", headers=cp.internal()).text
    return {(name, labels): float(value) for name, labels, value in _SAMPLE.findall(text)}


def test_the_counters_are_on_metrics_and_grow(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        _scenario(cp, http)
        first = _counters(http, cp)
        time.sleep(5.5)  # past the counters' cache
        second = _counters(http, cp)
    running_none = ("lcm_cost_usd_total", 'pool="none",state="running"')
    stopped_none = ("lcm_cost_usd_total", 'pool="none",state="stopped"')
    idle_none = ("lcm_cost_savings_usd_total", 'pool="none",reason="idle_pause"')
    scale_pool = ("lcm_cost_savings_usd_total", 'pool="ccna-pool",reason="scale_down"')
    assert first[running_none] == pytest.approx(RATE / 60, abs=1e-6)  # one start: the minute
    assert second[stopped_none] > first[stopped_none] > 0
    assert second[idle_none] > first[idle_none] > 0
    assert second[scale_pool] > first[scale_pool] > 0
    assert all(second[key] >= value for key, value in first.items())
    # The closed running intervals were settled into the totals, once each: the counters read them from there.
    client, db = _db(cp)
    try:
        settled = {d["_id"]: d for d in db["cost_totals"].find({})}
        assert db["cost_intervals"].count_documents({"state": "running", "settled": True}) == 2
    finally:
        client.close()
    assert settled["none"]["running_usd"] == pytest.approx(RATE / 60, abs=1e-6)
    assert settled["ccna-pool"]["running_usd"] == pytest.approx(RATE / 60, abs=1e-6)
