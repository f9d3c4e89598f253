"""SSE over the Redis event log, with real servers: snapshot, live events, replay, filters, replicas,
heartbeats, lifetime cap, and Redis being down."""

from __future__ import annotations

import asyncio
import re
import time

import redis

from control_plane_api.application.event_relay import OVERFLOW, EventFilter, Subscription
from control_plane_api.domain.event_log import LoggedEvent, parse_stream_id
from control_plane_api.domain.events import DomainEvent
from lcm_core.testing.processes import free_port
from tests.fixtures.control_plane import discovered
from tests.fixtures.event_log import log_entries
from tests.fixtures.metrics import post_reports, report
from tests.fixtures.sse import SseClient


def _stream(cp, **kwargs) -> SseClient:
    return SseClient(f"{cp.url}/api/events/stream", cp.viewer(), **kwargs)


def _position(stream_id: str) -> tuple[int, int]:
    position = parse_stream_id(stream_id)
    if position is None:
        raise AssertionError(f"{stream_id!r} is not a Redis Stream id")
    return position


def _import(cp, n: int) -> str:
    with cp.client() as http:
        return http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                         json={"instances": [discovered(n)]}).json()["created"][0]


def _metrics(cp, worker_id: str, cpu: float) -> None:
    with cp.client() as http:
        assert post_reports(cp, http, report(worker_id, cloudwatch={"cpu_utilization": cpu}))["updated"] == [worker_id]


def test_snapshot_then_imported_and_metrics_events_within_a_second(control_plane) -> None:
    existing = _import(control_plane, 1)
    control_plane.leader()
    with _stream(control_plane) as sse:
        snapshot = sse.frame()
        assert snapshot.event == "worker.snapshot"
        assert [w["id"] for w in snapshot.data["data"]["workers"]] == [existing]
        assert snapshot.id is not None

        started = time.monotonic()
        worker_id = _import(control_plane, 2)
        imported = sse.frame(timeout=1.0)
        assert imported.event == "worker.imported"
        assert imported.data["data"]["worker_id"] == imported.data["data"]["summary"]["id"] == worker_id
        assert imported.data["type"] == "worker.imported"
        assert imported.data["source"] == "control-plane-api"

        _metrics(control_plane, worker_id, 42.0)
        metrics = sse.frame(timeout=1.0, skip=("heartbeat", "worker.health.changed"))
        assert metrics.event == "worker.metrics.updated"
        assert set(metrics.data["data"]) == {"worker_id", "summary"}
        assert metrics.data["data"]["worker_id"] == worker_id
        assert metrics.data["data"]["summary"]["cpu_percent"] == 42.0
        assert time.monotonic() - started < 2.0
        assert imported.event_id < metrics.event_id or len(imported.event_id) < len(metrics.event_id)


def test_reconnect_with_last_event_id_replays_exactly_the_missed_events(control_plane) -> None:
    worker_id = _import(control_plane, 3)
    only = {"event_types": "worker.imported,worker.metrics.updated"}
    with _stream(control_plane, params=only) as sse:
        sse.next()  # snapshot
        _metrics(control_plane, worker_id, 1.0)
        last_seen = sse.frame(timeout=2.0)
        assert last_seen.event == "worker.metrics.updated"
    missed_worker = _import(control_plane, 4)
    for cpu in (2.0, 3.0):
        _metrics(control_plane, worker_id, cpu)
    with _stream(control_plane, params=only, last_event_id=last_seen.id) as again:
        replayed = again.drain(quiet=1.0)
    kinds = [(f.event, f.data["data"]["summary"].get("cpu_percent"), f.data["data"]["worker_id"]) for f in replayed]
    assert kinds == [
        ("worker.imported", None, missed_worker),
        ("worker.metrics.updated", 2.0, worker_id),
        ("worker.metrics.updated", 3.0, worker_id),
    ]
    assert all(f.id for f in replayed)


def test_filters_by_worker_and_event_type(control_plane) -> None:
    a, b = _import(control_plane, 5), _import(control_plane, 6)
    params = {"worker_ids": a, "event_types": "worker.metrics.*"}
    with _stream(control_plane, params=params) as sse:
        snapshot = sse.frame()
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
        frame = sse.frame(timeout=1.0)
    assert frame.event == "worker.imported"
    assert frame.data["data"]["summary"]["id"] == worker_id


def test_heartbeats_carry_the_last_id_and_connections_are_capped(control_plane_factory) -> None:
    cp = control_plane_factory(SSE_HEARTBEAT_SECONDS=0.3, SSE_MAX_CONNECTION_SECONDS=1.5)
    with _stream(cp) as sse:
        snapshot = sse.frame()
        heartbeat = sse.frame(skip=())
        assert heartbeat.event == "heartbeat"
        assert heartbeat.id == snapshot.id
        started = time.monotonic()
        while sse.next(timeout=3.0, skip=()) is not None:
            pass
        assert time.monotonic() - started < 3.0


def test_with_redis_down_events_still_reach_local_clients_and_the_api_serves(control_plane_factory) -> None:
    cp = control_plane_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with _stream(cp) as sse:
        assert sse.frame(timeout=5.0).event == "worker.snapshot"
        worker_id = _import(cp, 8)
        frame = sse.frame(timeout=5.0)
    assert frame.event == "worker.imported"
    assert frame.data["data"]["summary"]["id"] == worker_id
    assert frame.event_id.startswith("local-")
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


def _lose_the_log(cp) -> None:
    """What a Redis that restarted without its data leaves: neither the stream nor its epoch."""
    client = redis.Redis.from_url(cp.settings.redis_url.get_secret_value())
    try:
        assert client.delete(cp.settings.event_log_stream, f"{cp.settings.event_log_stream}:epoch") >= 1
    finally:
        client.close()


def test_ids_name_the_log_they_come_from(control_plane) -> None:
    worker_id = _import(control_plane, 9)
    with _stream(control_plane) as sse:
        snapshot = sse.frame()
        _metrics(control_plane, worker_id, 5.0)
        live = sse.frame(timeout=2.0, skip=("heartbeat", "worker.health.changed"))
    assert re.fullmatch(r"[0-9a-f]{16}:\d+-\d+", snapshot.event_id)
    assert re.fullmatch(r"[0-9a-f]{16}:\d+-\d+", live.event_id)
    assert snapshot.event_id.partition(":")[0] == live.event_id.partition(":")[0]


def test_a_last_event_id_of_a_lost_log_gets_a_fresh_snapshot_not_silence(control_plane) -> None:
    first = _import(control_plane, 10)
    with _stream(control_plane, params={"event_types": "worker.imported"}) as sse:
        sse.next()  # snapshot
        second = _import(control_plane, 11)
        last_seen = sse.frame(timeout=2.0)
        assert last_seen.data["data"]["summary"]["id"] == second
    _lose_the_log(control_plane)
    with _stream(control_plane, params={"event_types": "worker.imported"}, last_event_id=last_seen.id) as again:
        snapshot = again.frame(timeout=3.0)
        assert snapshot.event == "worker.snapshot"
        assert {w["id"] for w in snapshot.data["data"]["workers"]} == {first, second}
        assert snapshot.event_id.partition(":")[0] != last_seen.event_id.partition(":")[0]
        third = _import(control_plane, 12)
        live = again.frame(timeout=3.0)
    assert (live.event, live.data["data"]["summary"]["id"]) == ("worker.imported", third)
    assert live.event_id.partition(":")[0] == snapshot.event_id.partition(":")[0]


def test_a_connected_client_gets_a_fresh_snapshot_when_the_log_is_lost(control_plane) -> None:
    with _stream(control_plane, params={"event_types": "worker.imported"}) as sse:
        before = sse.frame()
        assert before.event == "worker.snapshot"
        _lose_the_log(control_plane)
        worker_id = _import(control_plane, 13)
        frames = [sse.frame(timeout=5.0)]
        if frames[0].event == "worker.snapshot" and worker_id not in {w["id"] for w in
                                                                      frames[0].data["data"]["workers"]}:
            frames.append(sse.frame(timeout=5.0))
    snapshot = frames[0]
    assert snapshot.event == "worker.snapshot"
    assert snapshot.event_id.partition(":")[0] != before.event_id.partition(":")[0]
    seen = {w["id"] for w in snapshot.data["data"]["workers"]} | {
        f.data["data"]["summary"]["id"] for f in frames[1:] if f.event == "worker.imported"}
    assert worker_id in seen


def test_a_cpa_without_redis_hands_out_no_id_that_replays_the_whole_log(control_plane_factory) -> None:
    healthy = control_plane_factory()
    _import(healthy, 14)
    _import(healthy, 15)
    cut_off = control_plane_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with _stream(cut_off) as sse:
        handed_out = sse.frame(timeout=5.0)
    assert handed_out.event == "worker.snapshot"
    assert handed_out.id != "0-0"
    # Resumed against a replica that has the log (or this one once Redis is back): a snapshot, not the log.
    with _stream(healthy, last_event_id=handed_out.id) as again:
        frames = again.drain(quiet=1.0)
    assert [f.event for f in frames] == ["worker.snapshot"]


def test_a_position_past_the_end_of_the_log_gets_a_snapshot(control_plane) -> None:
    """A Redis restored from an older copy keeps the epoch but not the newest entries: a client that saw them
    cannot be told exactly what it missed."""
    worker_id = _import(control_plane, 16)
    with _stream(control_plane, params={"event_types": "worker.metrics.updated"}) as sse:
        sse.next()  # snapshot
        _metrics(control_plane, worker_id, 7.0)
        seen = sse.frame(timeout=2.0)
    client = redis.Redis.from_url(control_plane.settings.redis_url.get_secret_value())
    try:
        stream = control_plane.settings.event_log_stream
        seen_at = _position(seen.event_id.partition(":")[2])
        newest = [entry_id for entry_id, _ in log_entries(client, stream, newest=50)
                  if _position(entry_id.decode()) >= seen_at]
        assert client.xdel(stream, *newest) == len(newest) >= 1
    finally:
        client.close()
    with _stream(control_plane, last_event_id=seen.id) as again:
        assert again.frame(timeout=3.0).event == "worker.snapshot"
