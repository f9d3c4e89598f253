"""`GET /api/events/stream` (Server-Sent Events), followed the way a browser's EventSource does: every frame's
`id:` is remembered, and when the connection drops (or the API ends it: its lifetime cap, a slow client's
overflow) the next one asks with `Last-Event-ID`, so the API replays exactly what was missed. Reconnects back
off (doubling, capped) while the API cannot be reached, and start again promptly once a stream delivered."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from lcm_cli.transport.client import USER_AGENT, ApiError, Credentials, error_of, unreachable

STREAM_PATH = "/api/events/stream"
HEARTBEAT = "heartbeat"
OVERFLOW = "stream.overflow"
#: Answers that a retry cannot change: bad credentials, a role missing, a refused filter.
FATAL = frozenset({400, 401, 403, 404, 422})


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str
    data: Any
    """The frame's data, decoded from JSON (the raw text when it is not JSON)."""


def parse_frames(lines: Iterable[str]) -> Iterator[Frame]:
    """SSE framing (the WHATWG rules the API's frames use): `field: value` lines, a blank line ends a frame,
    `:` starts a comment, several `data:` lines join with a line break."""
    event_id: str | None = None
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    decoded: Any = json.loads(text)
                except ValueError:
                    decoded = text
                yield Frame(event_id, event, decoded)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            event_id = value  # the id stays until another replaces it, as EventSource keeps its last id


class EventTail:
    """The API's event stream across reconnects. `last_event_id` is where it resumes from (None: a snapshot
    of the fleet first, then live events); `notice` is told about every drop and reconnect."""

    def __init__(self, base_url: str, credentials: Credentials, *, params: dict[str, str] | None = None,
                 last_event_id: str | None = None, read_timeout: float = 60.0, first_delay: float = 0.5,
                 max_delay: float = 15.0, notice: Callable[[str], None] = lambda _msg: None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.params = {k: v for k, v in (params or {}).items() if v}
        self.last_event_id = last_event_id
        self.connections = 0
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self._first_delay, self._max_delay = first_delay, max_delay
        self._notice, self._sleep = notice, sleep

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "User-Agent": USER_AGENT, **self.credentials.headers()}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    def frames(self) -> Iterator[Frame]:
        """Every frame, heartbeats and the API's overflow notice left out, until the caller stops (Ctrl-C)."""
        delay = self._first_delay
        with httpx.Client(base_url=self.base_url, timeout=self._timeout) as http:
            while True:
                delivered = False
                try:
                    with http.stream("GET", STREAM_PATH, params=self.params, headers=self._headers()) as answer:
                        if answer.status_code >= 400:
                            answer.read()
                            error = error_of(answer)
                            if answer.status_code in FATAL:
                                raise error
                            why = error.message
                        else:
                            self.connections += 1
                            why = "the API ended the stream"
                            for frame in parse_frames(answer.iter_lines()):
                                if frame.id:
                                    self.last_event_id = frame.id
                                delivered = True
                                if frame.event == OVERFLOW:
                                    why = "the API dropped this client as too slow"
                                    break
                                if frame.event != HEARTBEAT:
                                    yield frame
                except httpx.TransportError as exc:
                    why = unreachable(self.base_url, exc).message if not delivered else \
                        f"connection lost ({type(exc).__name__})"
                except httpx.InvalidURL as exc:
                    raise ApiError(f"not a valid API URL {self.base_url!r}: {exc}") from None
                delay = self._first_delay if delivered else delay
                resume = f"resuming after {self.last_event_id}" if self.last_event_id else "starting over"
                self._notice(f"{why}; reconnecting in {delay:.1f}s ({resume})")
                self._sleep(delay)
                delay = min(delay * 2, self._max_delay)
