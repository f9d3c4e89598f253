"""SSE over the Redis event log, with real servers: snapshot, live events, replay, filters, replicas,
heartbeats, lifetime cap, and Redis being down."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from control_plane_api.application.event_relay import OVERFLOW, EventFilter, Subscription
from control_plane_api.domain.events import DomainEvent
from control_plane_api.infrastructure.event_log import LoggedEvent
from lcm_core.testing.processes import free_port
from tests.fixtures.control_plane import discovered
from tests.fixtures.sse import SseClient


def _stream(cp, **kwargs) -> SseClient:
    return SseClient(f"{cp.url}/api/events/stream", cp.viewer(), **kwargs)


def _import(cp, n: int) -> str:
    with cp.client() as http:
        return http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                         json={"instances": [discovered(n)]}).json()["created"][0]


def _metrics(cp, worker_id: str, cpu: float) -> None:
    with cp.client() as http:
        response = http.post(f"/api/internal/workers/{worker_id}/metrics", headers=cp.leader(), json={
            "collected_at": datetime.now(UTC).isoformat(), "cloudwatch": {"cpu_utilization": cpu}})
        assert response.status_code == 200


def test_snapshot_then_imported_and_metrics_events_within_a_second(control_plane) -> None:
    existing = _import(control_plane, 1)
    control_plane.leader()
    with _stream(control_plane) as sse:
        snapshot = sse.next()
        assert snapshot.event == "worker.snapshot"
        assert [w["id"] for w in snapshot.data["data"]["workers"]] == [existing]
        assert snapshot.id is not None

        started = time.monotonic()
        worker_id = _import(control_plane, 2)
        imported = sse.next(timeout=1.0)
        assert imported.event == "worker.imported"
        assert imported.data["data"]["id"] == worker_id
        assert imported.data["type"] == "worker.imported"
        assert imported.data["source"] == "control-plane-api"

        _metrics(control_plane, worker_id, 42.0)
        metrics = sse.next(timeout=1.0, skip=("heartbeat", "worker.health.changed"))
        assert metrics.event == "worker.metrics.updated"
        assert metrics.data["data"]["cpu_percent"] == 42.0
        assert time.monotonic() - started < 2.0
        assert imported.id < metrics.id or len(imported.id) < len(metrics.id)


def test_reconnect_with_last_event_id_replays_exactly_the_missed_events(control_plane) -> None:
    worker_id = _import(control_plane, 3)
    only = {"event_types": "worker.imported,worker.metrics.updated"}
    with _stream(control_plane, params=only) as sse:
        sse.next()  # snapshot
        _metrics(control_plane, worker_id, 1.0)
        last_seen = sse.next(timeout=2.0)
        assert last_seen.event == "worker.metrics.updated"
    missed_worker = _import(control_plane, 4)
    for cpu in (2.0, 3.0):
        _metrics(control_plane, worker_id, cpu)
    with _stream(control_plane, params=only, last_event_id=last_seen.id) as again:
        replayed = again.drain(quiet=1.0)
    kinds = [(f.event, f.data["data"].get("cpu_percent"), f.data["data"].get("id")) for f in replayed]
    assert kinds == [
        ("worker.imported", None, missed_worker),
        ("worker.metrics.updated", 2.0, None),
        ("worker.metrics.updated", 3.0, None),
    ]
    assert all(f.id for f in replayed)


def test_filters_by_worker_and_event_type(control_plane) -> None:
    a, b = _import(control_plane, 5), _import(control_plane, 6)
    params = {"worker_ids": a, "event_types": "worker.metrics.*"}
    with _stream(control_plane, params=params) as sse:
        snapshot = sse.next()
        assert [w["id"] for w in snapshot.data["data"]["workers"]] == [a]
        _metrics(control_plane, b, 10.0)
        _metrics(control_plane, a, 20.0)
        frames = sse.drain(quiet=1.0)
    assert [(f.event, f.data["data"]["worker_id"]) for f in frames] == [("worker.metrics.updated", a)]


def test_an_event_committed_on_one_replica_reaches_clients_of_another(control_plane_factory) -> None:
    first = control_plane_factory()
    second = control_plane_factory(first.settings)  # same database, stream and etcd prefix: a replica
    second.epochs = first.epochs
    with _stream(second) as sse:
        sse.next()
        worker_id = _import(first, 7)
        frame = sse.next(timeout=1.0)
    assert frame.event == "worker.imported"
    assert frame.data["data"]["id"] == worker_id


def test_heartbeats_carry_the_last_id_and_connections_are_capped(control_plane_factory) -> None:
    cp = control_plane_factory(SSE_HEARTBEAT_SECONDS=0.3, SSE_MAX_CONNECTION_SECONDS=1.5)
    with _stream(cp) as sse:
        snapshot = sse.next()
        heartbeat = sse.next(skip=())
        assert heartbeat.event == "heartbeat"
        assert heartbeat.id == snapshot.id
        started = time.monotonic()
        while sse.next(timeout=3.0, skip=()) is not None:
            pass
        assert time.monotonic() - started < 3.0


def test_with_redis_down_events_still_reach_local_clients_and_the_api_serves(control_plane_factory) -> None:
    cp = control_plane_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with _stream(cp) as sse:
        assert sse.next(timeout=5.0).event == "worker.snapshot"
        worker_id = _import(cp, 8)
        frame = sse.next(timeout=5.0)
    assert frame.event == "worker.imported"
    assert frame.data["data"]["id"] == worker_id
    assert frame.id.startswith("local-")
    with cp.client() as http:
        assert http.get(f"/api/workers/{worker_id}", headers=cp.viewer()).status_code == 200


def test_a_slow_client_is_cut_off_never_silently_skipped() -> None:
    async def run() -> list[object]:
        sub = Subscription(EventFilter(), asyncio.Queue(maxsize=2))
        for n in range(3):
            sub.offer(LoggedEvent(id=f"1-{n}", event=DomainEvent(type="worker.metrics.updated", data={}),
                                  uid=str(n), origin="x"))
        sub.offer(LoggedEvent(id="1-9", event=DomainEvent(type="worker.metrics.updated", data={}), uid="9",
                              origin="x"))
        return [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]

    assert asyncio.run(run()) == [OVERFLOW]
