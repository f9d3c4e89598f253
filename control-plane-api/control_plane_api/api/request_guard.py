"""What every request passes before any route sees it (pure ASGI, so nothing is buffered on the way):

- `AuthenticateFirst`: a request to a route that needs credentials is answered 401 from its headers alone,
  before a byte of its body is read, so an anonymous caller costs no body reading or parsing;
- `BodyLimit`: a body larger than the route's allowance is answered 413: at once when `Content-Length`
  announces it, otherwise (chunked) as soon as the bytes read pass the allowance, so no more is ever held.
"""

from __future__ import annotations

import re

from fastapi.security.utils import get_authorization_scheme_param
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane_api.api.security import PRINCIPAL_STATE, api_key_valid, authenticate
from control_plane_api.infrastructure.identity import AuthenticationError, SessionStore
from lcm_core.errors import UnavailableError

#: Routes anyone may call: liveness, readiness, the login and its options, the dashboard's static shell and
#: files, and the SSO flow's browser redirects. Everything else needs a token, a session or the API key.
ANONYMOUS_PATHS = frozenset({"/", "/api/health", "/api/ready", "/api/auth/login", "/api/auth/options"})
ANONYMOUS_PREFIXES = ("/static/", "/api/auth/oidc/")

#: Routes that take a CML topology: creating a lablet definition and storing a new version of one.
TOPOLOGY_ROUTES = (("POST", re.compile(r"/api/lablet-definitions/?")),
                   ("PUT", re.compile(r"/api/lablet-definitions/[^/]+/?")))


def is_anonymous(path: str) -> bool:
    return path in ANONYMOUS_PATHS or path.startswith(ANONYMOUS_PREFIXES)


def _routed(scope: Scope) -> bool:
    """Whether some route matches the path (with any method: a wrong method is answered after authentication)."""
    return any(route.matches(scope)[0] is not Match.NONE for route in scope["app"].router.routes)


class AuthenticateFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_anonymous(scope["path"]) or not _routed(scope):
            await self.app(scope, receive, send)  # an unknown path is a 404 (its body is never read either)
            return
        cp = scope["app"].state.control_plane
        request = Request(scope)  # headers and cookies only: the body stays unread
        if not api_key_valid(cp, request.headers.get("x-api-key")):
            scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
            bearer = token if scheme.lower() == "bearer" and token else None
            try:
                who = await authenticate(cp, bearer, request.cookies.get(SessionStore.COOKIE))
            except AuthenticationError as exc:
                await JSONResponse({"detail": exc.message}, status_code=401,
                                   headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
            except UnavailableError as exc:
                await JSONResponse({"detail": exc.message, "code": exc.code}, status_code=503,
                                   headers={"Retry-After": "5"})(scope, receive, send)
                return
            scope.setdefault("state", {})[PRINCIPAL_STATE] = who
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the body grows past the allowance; FastAPI answers it as any HTTP error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this route accepts ({limit} bytes)")


class BodyLimit:
    def __init__(self, app: ASGIApp, default_bytes: int, topology_bytes: int) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.topology_bytes = topology_bytes

    def limit_for(self, method: str, path: str) -> int:
        for route_method, pattern in TOPOLOGY_ROUTES:
            if method == route_method and pattern.fullmatch(path):
                return self.topology_bytes
        return self.default_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    break  # the server refuses a malformed length itself
                if announced > limit:
                    await self._refuse(limit, scope, receive, send)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Normally answered inside the app; this covers a reader outside FastAPI's error handling.
            if started:
                raise
            await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(limit)
        await JSONResponse({"detail": error.detail}, status_code=413,
                           headers={"Connection": "close"})(scope, receive, send)
