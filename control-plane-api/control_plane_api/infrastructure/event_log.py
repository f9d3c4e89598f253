"""The durable, ordered event log: one Redis Stream, trimmed to a bounded length.

Every CPA replica appends the domain events it commits and tails the stream to fan them out to its own
SSE clients, so a browser connected to any replica sees every change. An entry id (`<ms>-<seq>`) is the
event's position in the log (`domain.event_log`).

A position alone does not say which log it belongs to: a Redis that restarts empty starts a new stream whose
ids may pass the old ones. So the log has an epoch, a random name kept in Redis next to the stream
(`<stream>:epoch`) and created when absent; a Redis that lost the stream lost the epoch with it and the next
reader creates a new one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from control_plane_api.domain.event_log import LoggedEvent, LogState
from control_plane_api.domain.events import DomainEvent
from lcm_core.errors import UnavailableError

P = ParamSpec("P")
R = TypeVar("R")


def _unavailable_on_redis_errors(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Redis's errors (and a dropped connection) as the `UnavailableError` the application handles."""

    @wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise UnavailableError(f"the event log is unreachable: {type(exc).__name__}: {exc}") from exc

    return call


def _encode(event: DomainEvent, uid: str, origin: str) -> dict[FieldT, EncodableT]:
    return {
        "type": event.type, "subject": event.subject_id or "", "time": event.time.isoformat(),
        "source": event.source, "data": json.dumps(event.data, default=str, separators=(",", ":")),
        "uid": uid, "origin": origin,
    }


def _decode(entry_id: bytes | str, fields: dict[Any, Any]) -> LoggedEvent:
    def text(key: str) -> str:
        value = fields.get(key.encode(), fields.get(key, b""))
        return value.decode() if isinstance(value, bytes) else str(value)

    event = DomainEvent(
        type=text("type"), data=json.loads(text("data") or "{}"), subject_id=text("subject") or None,
        time=datetime.fromisoformat(text("time")), source=text("source"),
    )
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return LoggedEvent(id=eid, event=event, uid=text("uid"), origin=text("origin"))


def _decode_entries(entries: Iterable[tuple[bytes | str | None, dict[Any, Any] | None]] | None) -> list[LoggedEvent]:
    """A range of stream entries. redis-py types an entry's id and fields as optional (XREADGROUP answers a
    deleted pending entry so); such an entry carries no event and is left out."""
    return [_decode(eid, fields) for eid, fields in entries or () if eid is not None and fields is not None]


class RedisEventLog:
    """The event log on a Redis Stream (`application.ports.EventLog`): every method raises `UnavailableError`
    when Redis cannot be reached."""

    def __init__(self, redis: Redis, stream: str = "lcm:events", max_length: int = 100_000) -> None:
        self._redis = redis
        self.stream = stream
        self.max_length = max_length
        self.epoch_key = f"{stream}:epoch"

    @_unavailable_on_redis_errors
    async def state(self) -> LogState:
        """The epoch (created when absent) with the first and last entry and the length, read atomically,
        so that the positions belong to the epoch they come with."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.epoch_key, uuid.uuid4().hex[:16], nx=True)
            pipe.get(self.epoch_key)
            pipe.xrange(self.stream, count=1)
            pipe.xrevrange(self.stream, count=1)
            pipe.xlen(self.stream)
            _created, epoch, oldest, newest, length = await pipe.execute()
        return LogState(epoch=epoch.decode() if isinstance(epoch, bytes) else str(epoch),
                        first_id=_decode(*oldest[0]).id if oldest else None,
                        last_id=_decode(*newest[0]).id if newest else "0-0", length=int(length))

    @_unavailable_on_redis_errors
    async def epoch(self) -> str:
        """The log's epoch, created when absent (the log was lost, or never existed)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.epoch_key, uuid.uuid4().hex[:16], nx=True)
            pipe.get(self.epoch_key)
            _created, epoch = await pipe.execute()
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    @_unavailable_on_redis_errors
    async def append(self, event: DomainEvent, uid: str, origin: str) -> str:
        entry_id = await self._redis.xadd(self.stream, _encode(event, uid, origin),
                                          maxlen=self.max_length, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    @_unavailable_on_redis_errors
    async def append_many(self, items: list[tuple[DomainEvent, str]], origin: str) -> list[str]:
        """Append a batch in one round trip (a non-transactional pipeline keeps the order)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event, uid in items:
                pipe.xadd(self.stream, _encode(event, uid, origin), maxlen=self.max_length, approximate=True)
            replies = await pipe.execute()
        return [r.decode() if isinstance(r, bytes) else str(r) for r in replies]

    @_unavailable_on_redis_errors
    async def read_after(self, after: str, count: int = 1000) -> list[LoggedEvent]:
        """Entries strictly after `after`, oldest first."""
        return _decode_entries(await self._redis.xrange(self.stream, min=f"({after}", count=count))

    @_unavailable_on_redis_errors
    async def wait_after(self, after: str, block_ms: int, count: int = 500) -> list[LoggedEvent]:
        """Block up to `block_ms` for entries after `after` (the tailer's read)."""
        reply = await self._redis.xread({self.stream: after}, count=count, block=block_ms)
        if not reply:  # nothing came in `block_ms`
            return []
        if not isinstance(reply, list):
            # redis-py's default (legacy) reply is [[stream, entries]], over RESP2 and RESP3 alike; a REDIS_URL
            # that turns legacy replies off gets a dict this log does not read: say so, not "cannot unpack".
            raise TypeError(f"XREAD answered a {type(reply).__name__}: REDIS_URL must keep redis-py's legacy "
                            "reply shapes")
        return [event for _stream, entries in reply for event in _decode_entries(entries)]
