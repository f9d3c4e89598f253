"""Positions in the durable event log and the SSE ids made of them (docs/events.md). No I/O.

An entry id (`<ms>-<seq>`) is an event's position in the log. A position alone does not say which log it
belongs to (a Redis that restarts empty starts a new stream whose ids may pass the old ones), so the log has an
epoch, and browsers get `<epoch>:<ms>-<seq>` as the SSE `id:`; an id of another epoch cannot be resumed from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from control_plane_api.domain.events import DomainEvent

_STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_EVENT_ID = re.compile(r"^([0-9a-f]{1,32}):(\d{1,20}-\d{1,20})$")

Position = tuple[int, int]


def parse_stream_id(value: str | None) -> Position | None:
    """`"1700000000000-3"` → (1700000000000, 3); anything else → None."""
    match = _STREAM_ID.match(value or "")
    return (int(match[1]), int(match[2])) if match else None


def event_id(epoch: str, stream_id: str) -> str:
    """The SSE id of a log position: `<epoch>:<ms>-<seq>`."""
    return f"{epoch}:{stream_id}"


def parse_event_id(value: str | None) -> tuple[str, str, Position] | None:
    """`"9f2c...:1700000000000-3"` → (epoch, stream id, position); anything else (a bare stream id from
    before epochs, a replica-local id) → None."""
    match = _EVENT_ID.match(value or "")
    if match is None:
        return None
    position = parse_stream_id(match[2])
    return None if position is None else (match[1], match[2], position)


@dataclass(frozen=True)
class LoggedEvent:
    """An event with its position in the log (or a replica-local id while the log is unreachable)."""

    id: str
    event: DomainEvent
    uid: str
    origin: str
    epoch: str | None = None
    """The log's epoch when the entry was read from it; None for a replica-local event."""

    @property
    def position(self) -> Position | None:
        return parse_stream_id(self.id)

    @property
    def sse_id(self) -> str:
        return event_id(self.epoch, self.id) if self.epoch is not None and self.position is not None else self.id


@dataclass(frozen=True)
class LogState:
    epoch: str
    first_id: str | None
    last_id: str
    """"0-0" for an empty log."""
    length: int
