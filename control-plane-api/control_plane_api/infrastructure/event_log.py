"""The durable, ordered event log: one Redis Stream, trimmed to a bounded length.

Every CPA replica appends the domain events it commits and tails the stream to fan them out to its own
SSE clients, so a browser connected to any replica sees every change. An entry id (`<ms>-<seq>`) is the
event's position, sent to browsers as the SSE `id:` and used for `Last-Event-ID` replay.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from control_plane_api.domain.events import DomainEvent

_STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


def parse_stream_id(value: str | None) -> tuple[int, int] | None:
    """`"1700000000000-3"` → (1700000000000, 3); anything else → None."""
    match = _STREAM_ID.match(value or "")
    return (int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class LoggedEvent:
    """An event with its position in the log (or a replica-local id while the log is unreachable)."""

    id: str
    event: DomainEvent
    uid: str
    origin: str

    @property
    def position(self) -> tuple[int, int] | None:
        return parse_stream_id(self.id)


def _encode(event: DomainEvent, uid: str, origin: str) -> dict[str, str]:
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


class RedisEventLog:
    def __init__(self, redis: Redis, stream: str = "lcm:events", max_length: int = 100_000) -> None:
        self._redis = redis
        self.stream = stream
        self.max_length = max_length

    async def append(self, event: DomainEvent, uid: str, origin: str) -> str:
        entry_id = await self._redis.xadd(self.stream, _encode(event, uid, origin),
                                          maxlen=self.max_length, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def append_many(self, items: list[tuple[DomainEvent, str]], origin: str) -> list[str]:
        """Append a batch in one round trip (a non-transactional pipeline keeps the order)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event, uid in items:
                pipe.xadd(self.stream, _encode(event, uid, origin), maxlen=self.max_length, approximate=True)
            replies = await pipe.execute()
        return [r.decode() if isinstance(r, bytes) else str(r) for r in replies]

    async def last_id(self) -> str:
        """Position of the newest entry, "0-0" for an empty log."""
        newest = await self._redis.xrevrange(self.stream, count=1)
        return _decode(*newest[0]).id if newest else "0-0"

    async def first_id(self) -> str | None:
        oldest = await self._redis.xrange(self.stream, count=1)
        return _decode(*oldest[0]).id if oldest else None

    async def read_after(self, after: str, count: int = 1000) -> list[LoggedEvent]:
        """Entries strictly after `after`, oldest first."""
        entries = await self._redis.xrange(self.stream, min=f"({after}", count=count)
        return [_decode(eid, fields) for eid, fields in entries]

    async def wait_after(self, after: str, block_ms: int, count: int = 500) -> list[LoggedEvent]:
        """Block up to `block_ms` for entries after `after` (the tailer's read)."""
        reply = await self._redis.xread({self.stream: after}, count=count, block=block_ms)
        return [_decode(eid, fields) for _stream, entries in reply or [] for eid, fields in entries]
