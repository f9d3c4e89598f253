"""Fan-out of domain events to this replica's SSE clients, fed by the durable log.

Publishing appends to the log; a tailer task reads the log and delivers each entry to the matching local
subscribers, so every replica delivers every event in log order. When the log (Redis) is unreachable,
events are delivered to local clients at once under a replica-local id and kept (bounded) until the log
is back, then appended; the tailer recognises them by uid and does not deliver them twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from control_plane_api.domain.events import DomainEvent
from control_plane_api.infrastructure.event_log import LoggedEvent, RedisEventLog, parse_stream_id

logger = logging.getLogger(__name__)

OVERFLOW = object()
"""Put in a subscriber's queue when it fell behind: the stream ends and the client replays on reconnect."""
CLOSED = object()
"""Put in every queue at shutdown."""


@dataclass(frozen=True)
class EventFilter:
    worker_ids: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()

    def matches(self, event: DomainEvent) -> bool:
        if self.worker_ids and event.subject_id not in self.worker_ids:
            return False
        if not self.event_types:
            return True
        return any(event.type == t or (t.endswith(".*") and event.type.startswith(t[:-1]))
                   for t in self.event_types)


@dataclass(eq=False)
class Subscription:
    filter: EventFilter
    queue: asyncio.Queue[object] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    def offer(self, item: LoggedEvent) -> None:
        if self.overflowed or not self.filter.matches(item.event):
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Never skip silently: drop what is queued and tell the stream to end; the client reconnects
            # with its Last-Event-ID and replays everything it missed from the log.
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(OVERFLOW)


class EventRelay:
    def __init__(self, log: RedisEventLog, *, tail_log: RedisEventLog | None = None, queue_size: int = 1000,
                 pending_limit: int = 10_000, append_timeout: float = 1.0, block_ms: int = 1000) -> None:
        self._log = log
        # Blocking reads get their own connection (and a socket timeout longer than the block).
        self._tail_log = tail_log or log
        self.origin = uuid.uuid4().hex[:12]
        self._queue_size = queue_size
        self._append_timeout = append_timeout
        self._block_ms = block_ms
        self._subscribers: set[Subscription] = set()
        self._pending: deque[tuple[DomainEvent, str]] = deque(maxlen=pending_limit)
        self._delivered_locally: set[str] = set()
        self._local_seq = itertools.count(1)
        self._last_id: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.log_available = True
        self.delivered = 0

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._task = asyncio.create_task(self._tail(), name="event-log-tailer")

    async def stop(self) -> None:
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(CLOSED)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ----------------------------------------------------------------- publishing

    async def publish(self, events: Iterable[DomainEvent]) -> None:
        items = [(event, uuid.uuid4().hex) for event in events]
        if not items:
            return
        if self.log_available and not self._pending:
            try:
                await asyncio.wait_for(self._log.append_many(items, self.origin), self._append_timeout)
                return
            except (RedisError, OSError, TimeoutError) as exc:
                self._mark_unavailable(exc)
        for event, uid in items:
            self._pending.append((event, uid))
            self._delivered_locally.add(uid)
            self._deliver(LoggedEvent(id=f"local-{self.origin}-{next(self._local_seq)}", event=event, uid=uid,
                                      origin=self.origin))

    def _mark_unavailable(self, exc: BaseException) -> None:
        if self.log_available:
            logger.warning("event log unavailable (%s); delivering locally and buffering", exc)
        self.log_available = False

    # ----------------------------------------------------------------- subscribing

    def subscribe(self, event_filter: EventFilter) -> Subscription:
        sub = Subscription(event_filter, asyncio.Queue(maxsize=self._queue_size))
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def current_id(self) -> str:
        """The position a new client starts from (the log's newest entry)."""
        try:
            return await asyncio.wait_for(self._log.last_id(), self._append_timeout)
        except (RedisError, OSError, TimeoutError):
            return self._last_id or "0-0"

    async def replay(self, after: str, limit: int = 10_000) -> list[LoggedEvent] | None:
        """Everything after `after`, or None when that cannot be known exactly (then send a snapshot)."""
        position = parse_stream_id(after)
        if position is None:
            return None
        try:
            first = parse_stream_id(await self._log.first_id())
            if first is not None and position != (0, 0) and first > position:
                return None  # trimmed away: the client missed more than the log keeps
            out: list[LoggedEvent] = []
            cursor = after
            while len(out) < limit:
                batch = await self._log.read_after(cursor, count=1000)
                if not batch:
                    return out
                out.extend(batch)
                cursor = batch[-1].id
            return None
        except (RedisError, OSError, TimeoutError):
            return None

    # ----------------------------------------------------------------- tailing

    def _deliver(self, item: LoggedEvent) -> None:
        self.delivered += 1
        for sub in list(self._subscribers):
            sub.offer(item)

    async def _flush_pending(self) -> None:
        while self._pending:
            event, uid = self._pending[0]
            await asyncio.wait_for(self._log.append(event, uid, self.origin), self._append_timeout)
            self._pending.popleft()

    async def _tail(self) -> None:
        delay = 0.2
        while True:
            try:
                if self._last_id is None:
                    self._last_id = await self._log.last_id()
                await self._flush_pending()
                entries = await self._tail_log.wait_after(self._last_id, self._block_ms)
                if not self.log_available:
                    logger.info("event log available again")
                self.log_available, delay = True, 0.2
                for entry in entries:
                    self._last_id = entry.id
                    if entry.uid in self._delivered_locally:
                        self._delivered_locally.discard(entry.uid)
                        continue
                    self._deliver(entry)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                self._mark_unavailable(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
