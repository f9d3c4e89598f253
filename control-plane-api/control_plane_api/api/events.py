"""`GET /api/events/stream`: domain events to browsers over Server-Sent Events.

On connect a client gets `worker.snapshot` (the fleet as it is), or, when it sends `Last-Event-ID`,
exactly the events it missed (replayed from the durable log). Every frame carries `id:` (the position in
the log). Idle streams get `heartbeat` events; a client that cannot keep up is disconnected (it reconnects
and replays); a connection lives at most `SSE_MAX_CONNECTION_SECONDS`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from control_plane_api.api.security import CP, Viewer
from control_plane_api.application.event_relay import CLOSED, OVERFLOW, EventFilter, EventRelay, Subscription
from control_plane_api.bootstrap import ControlPlane
from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.infrastructure.event_log import LoggedEvent, parse_stream_id
from control_plane_api.infrastructure.mongo_workers import WorkerQuery

router = APIRouter(prefix="/api/events", tags=["events"])


def _frame(event_id: str, event: DomainEvent) -> dict[str, str]:
    return {"id": event_id, "event": event.type, "data": json.dumps(event.envelope(), default=str)}


async def _snapshot(cp: ControlPlane, flt: EventFilter) -> DomainEvent:
    query = WorkerQuery(ids=sorted(flt.worker_ids)) if flt.worker_ids else WorkerQuery()
    workers = await cp.workers.workers.all(query)
    return DomainEvent(type=ev.WORKER_SNAPSHOT, data={"workers": [w.summary() for w in workers],
                                                      "count": len(workers)})


def _newer(item: LoggedEvent, last: tuple[int, int] | None) -> bool:
    position = item.position
    return last is None or position is None or position > last


async def _stream(request: Request, cp: ControlPlane, relay: EventRelay, sub: Subscription, flt: EventFilter,
                  last_event_id: str | None) -> AsyncIterator[dict[str, Any]]:
    settings = cp.settings
    deadline = time.monotonic() + settings.sse_max_connection_seconds
    try:
        replayed = await relay.replay(last_event_id) if last_event_id else None
        if replayed is not None:
            last_id = last_event_id or "0-0"
            for item in replayed:
                if flt.matches(item.event):
                    yield _frame(item.id, item.event)
                last_id = item.id
        else:
            last_id = await relay.current_id()
            yield _frame(last_id, await _snapshot(cp, flt))
        last_position = parse_stream_id(last_id)
        while time.monotonic() < deadline:
            timeout = min(settings.sse_heartbeat_seconds, max(0.0, deadline - time.monotonic()))
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield {"id": last_id, "event": ev.HEARTBEAT,
                       "data": json.dumps(DomainEvent(type=ev.HEARTBEAT, data={}).envelope())}
                continue
            if item is OVERFLOW:
                yield {"id": last_id, "event": "stream.overflow",
                       "data": json.dumps({"reason": "client too slow; reconnect with Last-Event-ID"})}
                return
            if item is CLOSED:
                return
            assert isinstance(item, LoggedEvent)
            if not _newer(item, last_position):
                continue  # already sent during replay
            if item.position is not None:
                last_id, last_position = item.id, item.position
            yield _frame(item.id, item.event)
    finally:
        relay.unsubscribe(sub)


@router.get("/stream", summary="Server-Sent Events: worker snapshot, then live domain events")
async def stream(
    request: Request, cp: CP, _who: Viewer,
    worker_ids: Annotated[str | None, Query(max_length=20000, description="Comma-separated worker ids")] = None,
    event_types: Annotated[str | None, Query(max_length=2000, description="Types; `worker.*` style prefixes")]
    = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
    resume_from: Annotated[str | None, Query(
        alias="last_event_id", max_length=100,
        description="Same as the Last-Event-ID header, for a client that opens a new EventSource itself")] = None,
) -> EventSourceResponse:
    last_event_id = last_event_id or resume_from
    flt = EventFilter(
        worker_ids=frozenset(w for w in (worker_ids or "").split(",") if w),
        event_types=frozenset(t for t in (event_types or "").split(",") if t),
    )
    relay = cp.relay
    sub = relay.subscribe(flt)  # before the replay/snapshot, so nothing falls between the two
    return EventSourceResponse(
        _stream(request, cp, relay, sub, flt, last_event_id), ping=0, send_timeout=30,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
