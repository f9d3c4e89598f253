"""Fan-out of domain events to this replica's SSE clients, fed by the durable log.

Publishing appends to the log (`ports.EventLog`, a Redis stream); a tailer task reads the log and delivers
each entry to the matching local subscribers, so every replica delivers every event in log order. When the log
is unreachable (its adapter raises `UnavailableError`), events are delivered to local clients at once under a
replica-local id and kept (bounded) until the log is back, then appended; the tailer recognises them by uid
and does not deliver them twice.

Entries are delivered labelled with the log's epoch (see `domain.event_log`). When the tailer finds that the epoch
changed (Redis lost the stream), it tells every subscriber (`LogLost`): what they were sent cannot be
resumed from, so the stream sends a fresh snapshot and goes on in the new log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from control_plane_api.application.ports import EventLog
from control_plane_api.domain.event_log import LoggedEvent, event_id, parse_event_id, parse_stream_id
from control_plane_api.domain.events import DomainEvent
from lcm_core.errors import UnavailableError

logger = logging.getLogger(__name__)

OVERFLOW = object()
"""Put in a subscriber's queue when it fell behind: the stream ends and the client replays on reconnect."""
CLOSED = object()
"""Put in every queue at shutdown."""


@dataclass(frozen=True)
class LogLost:
    """Put in every queue when the log was lost: ids of other epochs than `epoch` cannot be resumed from."""

    epoch: str


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
            self._overflow()

    def _overflow(self) -> None:
        self.overflowed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(OVERFLOW)

    def log_lost(self, epoch: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(LogLost(epoch))
        except asyncio.QueueFull:
            self._overflow()  # it reconnects with an id of the lost log and gets a snapshot then


class EventRelay:
    def __init__(self, log: EventLog, *, tail_log: EventLog | None = None, queue_size: int = 1000,
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
        self._epoch: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.log_available = True
        self.delivered = 0
        self.overflowed_clients = 0
        """Streams ended since start because their client read too slowly for its queue (`/metrics`)."""

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
            except (UnavailableError, TimeoutError) as exc:
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
        """The id a new client starts from: the log's newest entry, read before the snapshot.

        Without the log, the last position this replica's tailer delivered (a later replay from it is exact
        in the same epoch and a snapshot in another); without even that (the log was never reached), an id
        that names no log, so that a reconnect with it gets a snapshot rather than the whole log again."""
        try:
            state = await asyncio.wait_for(self._log.state(), self._append_timeout)
            return event_id(state.epoch, state.last_id)
        except (UnavailableError, TimeoutError):
            if self._epoch is not None and self._last_id is not None:
                return event_id(self._epoch, self._last_id)
            return f"local-{self.origin}-0"

    async def replay(self, after: str, limit: int = 10_000) -> list[LoggedEvent] | None:
        """Everything after the SSE id `after`, or None when that cannot be known exactly (then the client
        gets a snapshot): an id of another epoch (a lost log) or of no log, a position trimmed away, more
        than `limit` events, or the log unreachable."""
        parsed = parse_event_id(after)
        if parsed is None:
            return None
        epoch, stream_id, position = parsed
        try:
            state = await asyncio.wait_for(self._log.state(), self._append_timeout)
            if state.epoch != epoch:
                return None
            first = parse_stream_id(state.first_id)
            if position == (0, 0):
                # Handed out for an empty log. Trimming (MAXLEN ~) keeps at least max_length entries, so a
                # shorter log has lost nothing since.
                if first is not None and state.length >= self._log.max_length:
                    return None
            elif first is not None and first > position:
                return None  # trimmed away: the client missed more than the log keeps
            newest = parse_stream_id(state.last_id)
            if newest is not None and position > newest:
                return None  # a position this log does not have (Redis restored an older copy of it)
            out: list[LoggedEvent] = []
            cursor = stream_id
            while len(out) <= limit:
                batch = await self._log.read_after(cursor, count=1000)
                if not batch:
                    break
                out.extend(batch)
                cursor = batch[-1].id
            if len(out) > limit:
                return None
            # The reads above are not one transaction: a log lost meanwhile shows as another epoch.
            if await asyncio.wait_for(self._log.epoch(), self._append_timeout) != epoch:
                return None
            return [replace(item, epoch=epoch) for item in out]
        except (UnavailableError, TimeoutError):
            return None

    # ----------------------------------------------------------------- tailing

    def _deliver(self, item: LoggedEvent) -> None:
        self.delivered += 1
        self._to_each(lambda sub: sub.offer(item))

    def _to_each(self, hand: Callable[[Subscription], None]) -> None:
        """Hand something to every subscriber, counting those it overflows."""
        for sub in list(self._subscribers):
            overflowed = sub.overflowed
            hand(sub)
            if sub.overflowed and not overflowed:
                self.overflowed_clients += 1

    async def _flush_pending(self) -> None:
        while self._pending:
            event, uid = self._pending[0]
            await asyncio.wait_for(self._log.append(event, uid, self.origin), self._append_timeout)
            self._pending.popleft()

    def _log_lost(self, epoch: str) -> None:
        logger.warning("event log lost (epoch %s, now %s): clients get a fresh snapshot", self._epoch, epoch)
        self._epoch, self._last_id = epoch, "0-0"
        self._to_each(lambda sub: sub.log_lost(epoch))

    async def _tail(self) -> None:
        delay = 0.2
        while True:
            try:
                if self._last_id is None or self._epoch is None:
                    state = await self._log.state()
                    self._epoch, self._last_id = state.epoch, state.last_id
                await self._flush_pending()
                entries = await self._tail_log.wait_after(self._last_id, self._block_ms)
                # Read after the entries: if the log was lost before or during the read, the entries may be
                # of the new log, and are read again from its start under the new epoch.
                epoch = await self._log.epoch()
                if not self.log_available:
                    logger.info("event log available again")
                self.log_available, delay = True, 0.2
                if epoch != self._epoch:
                    self._log_lost(epoch)
                    continue
                for entry in entries:
                    self._last_id = entry.id
                    if entry.uid in self._delivered_locally:
                        self._delivered_locally.discard(entry.uid)
                        continue
                    self._deliver(replace(entry, epoch=epoch))
            except asyncio.CancelledError:
                raise
            except (UnavailableError, TimeoutError) as exc:
                self._mark_unavailable(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
