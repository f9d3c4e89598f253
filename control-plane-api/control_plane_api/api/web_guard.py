"""What every HTTP answer of the CPA carries, and which browsers may mutate with the session cookie.

- Cookie-authenticated mutations (POST/PUT/PATCH/DELETE with the dashboard cookie and no bearer token) whose
  `Origin` (or, without it, `Referer`) is not the CPA's own origin are refused with 403 before any route runs.
  An origin is scheme, host and port: `https://host` is not `http://host`. The CPA's origin is the request's
  own (scheme as uvicorn sees it, `Host` header), or one of `CPA_PUBLIC_ORIGINS` when a proxy terminates TLS.
- `X-Content-Type-Options: nosniff` on every answer; `Cache-Control: no-store` on API answers (they carry
  fleet state and user data a shared cache must not keep); answers that set their own `Cache-Control` (the
  dashboard's files, the event stream) keep it.

A pure ASGI middleware: it never reads a request body and passes streaming answers through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane_api.infrastructure.identity import SessionStore

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """`(scheme, host, port)` of an origin or URL, the port made explicit; None when it is not one."""
    try:
        parts = urlsplit(value.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def request_origin(scheme: str, host_header: str | None) -> Origin | None:
    """The origin a request was sent to: its scheme and its `Host` header."""
    if not host_header:
        return None
    return parse_origin(f"{scheme}://{host_header}")


def same_origin(claimed: str, own: Origin | None, allowed: Iterable[Origin] = ()) -> bool:
    """Whether the `Origin`/`Referer` a browser sent names the CPA itself (scheme, host and port)."""
    origin = parse_origin(claimed)
    return origin is not None and (origin == own or origin in set(allowed))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _has_session_cookie(scope: Scope) -> bool:
    cookie = _header(scope, b"cookie") or ""
    return any(part.strip().startswith(f"{SessionStore.COOKIE}=") for part in cookie.split(";"))


class WebGuard:
    def __init__(self, inner: ASGIApp, public_origins: Iterable[str] = ()) -> None:
        self.inner = inner
        self.allowed = [o for o in (parse_origin(v) for v in public_origins) if o is not None]

    def _cross_origin(self, scope: Scope) -> bool:
        if scope["method"] not in _MUTATING or not _has_session_cookie(scope):
            return False
        if (_header(scope, b"authorization") or "").lower().startswith("bearer "):
            return False  # a bearer token, not the cookie, authenticates this request
        claimed = _header(scope, b"origin") or _header(scope, b"referer")
        if claimed is None:
            return False  # not a browser's cross-site request (browsers send Origin on these)
        own = request_origin(scope.get("scheme", "http"), _header(scope, b"host"))
        return not same_origin(claimed, own, self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {key.lower() for key, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if api and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        if self._cross_origin(scope):
            body = json.dumps({"detail": "cross-origin request with a session cookie refused"}).encode()
            await with_headers({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.inner(scope, receive, with_headers)
