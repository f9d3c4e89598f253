"""`GET /api/events/stream`: domain events to browsers over Server-Sent Events.

On connect a client gets `worker.snapshot` (the fleet as it is), or, when it sends `Last-Event-ID`,
exactly the events it missed (replayed from the durable log). Every frame carries `id:`, the position in
the log with the log's epoch (`<epoch>:<ms>-<seq>`); an id of a lost or trimmed log gets a snapshot, and a
log lost while a client is connected gets it a fresh snapshot in the stream. Idle streams get `heartbeat`
events; a client that cannot keep up is disconnected (it reconnects and replays); a connection lives at most
`SSE_MAX_CONNECTION_SECONDS`.
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
from control_plane_api.application.event_relay import (
    CLOSED,
    OVERFLOW,
    EventFilter,
    EventRelay,
    LogLost,
    Subscription,
)
from control_plane_api.bootstrap import ControlPlane
from control_plane_api.domain import events as ev
from control_plane_api.domain.event_log import LoggedEvent, Position, parse_event_id
from control_plane_api.domain.events import DomainEvent

router = APIRouter(prefix="/api/events", tags=["events"])


def _frame(event_id: str, event: DomainEvent) -> dict[str, str]:
    return {"id": event_id, "event": event.type, "data": json.dumps(event.envelope(), default=str)}


def _last(event_id: str) -> tuple[str, Position] | None:
    parsed = parse_event_id(event_id)
    return None if parsed is None else (parsed[0], parsed[2])


def _newer(item: LoggedEvent, last: tuple[str, Position] | None) -> bool:
    """Whether the client has not seen `item` yet. Replica-local events are always new; an entry of another
    epoch than the client's position is of the log before a loss, which the snapshot sent since covers."""
    if last is None or item.position is None or item.epoch is None:
        return True
    return item.epoch == last[0] and item.position > last[1]


async def _stream(request: Request, cp: ControlPlane, relay: EventRelay, sub: Subscription, flt: EventFilter,
                  last_event_id: str | None) -> AsyncIterator[dict[str, Any]]:
    settings = cp.settings
    deadline = time.monotonic() + settings.sse_max_connection_seconds
    try:
        replayed = await relay.replay(last_event_id) if last_event_id else None
        if replayed is not None and last_event_id is not None:
            last_id = last_event_id
            for logged in replayed:
                if flt.matches(logged.event):
                    yield _frame(logged.sse_id, logged.event)
                last_id = logged.sse_id
        else:
            last_id = await relay.current_id()
            yield _frame(last_id, await cp.snapshots.snapshot(flt.worker_ids))
        last_position = _last(last_id)
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
            if isinstance(item, LogLost):
                if last_position is not None and last_position[0] == item.epoch:
                    continue  # this stream already started in the new log (the tailer noticed later)
                # What the client has seen is of a log that is gone: start over from the new one.
                last_id = await relay.current_id()
                last_position = _last(last_id)
                yield _frame(last_id, await cp.snapshots.snapshot(flt.worker_ids))
                continue
            assert isinstance(item, LoggedEvent)
            if not _newer(item, last_position):
                continue  # already sent during replay, or covered by the snapshot
            if item.epoch is not None and item.position is not None:
                last_id, last_position = item.sse_id, (item.epoch, item.position)
            yield _frame(item.sse_id, item.event)
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
