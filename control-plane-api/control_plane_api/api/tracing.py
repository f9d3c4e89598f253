"""A SERVER span per HTTP request, named by method and route template (`POST
/api/internal/workers/metrics:batch`), child of the caller's span when the request carries a W3C `traceparent`
(the controllers send one: `lcm_core.control_plane_client`). What the request's handlers trace themselves
(`lcm_core.tracing.tracer()`) nests under it."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lcm_core import tracing


class RequestSpans:
    """Pure ASGI (not BaseHTTPMiddleware), so that streaming responses pass through untouched."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        method = scope["method"]
        # Header names come lower-cased in ASGI; `traceparent` and `tracestate` are ASCII.
        caller = tracing.extract({name.decode("latin-1"): value.decode("latin-1")
                                  for name, value in scope.get("headers", ())})
        # Named once routed (below): the template is known only after the router has matched the path.
        with tracing.tracer().start_as_current_span(method, context=caller, kind=SpanKind.SERVER,
                                                    record_exception=False) as span:
            span.set_attributes({"http.request.method": method, "url.path": scope["path"]})
            status = [500]

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.inner(scope, receive, capture)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise
            finally:
                template = getattr(scope.get("route"), "path", None)
                if template is not None:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:  # a 4xx is the caller's mistake, not this server's (semantic conventions)
                    span.set_status(Status(StatusCode.ERROR))


def install_tracing(app: FastAPI) -> None:
    app.add_middleware(RequestSpans)
