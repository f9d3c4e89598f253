"""A real HTTP server on a free port that answers whatever a test sets: what may stand at LCM_API_URL instead of
the control-plane API (an ingress redirecting, a login page, a proxy's error page, an API of another release),
or an event stream whose frames a test writes."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

Handler = TypeVar("Handler", bound=http.server.BaseHTTPRequestHandler)


class CannedAnswer(http.server.BaseHTTPRequestHandler):
    """Answers every GET and POST with `status`, `headers_out` and `body` (a Content-Length is added)."""

    status = 200
    headers_out: dict[str, str] = {}
    body = b""
    url = ""

    def do_GET(self) -> None:
        self.send_response(self.status)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


class CannedStream(http.server.BaseHTTPRequestHandler):
    """An event stream: `frames` (SSE text) then the end of the connection."""

    frames = b""
    url = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(self.frames)
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(handler: type[Handler]) -> Iterator[type[Handler]]:
    """A fresh subclass of `handler` served on 127.0.0.1 (its `url` set), for the test to configure."""
    own = type(handler.__name__, (handler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), own)
    own.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield own
    finally:
        server.shutdown()
        server.server_close()
