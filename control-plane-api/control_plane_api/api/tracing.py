"""A SERVER span per HTTP request, named by method and route template (`POST
/api/internal/workers/metrics:batch`), child of the caller's span when the request carries a W3C `traceparent`
(the controllers send one: `lcm_core.control_plane_client`). What the request's handlers trace themselves
(`lcm_core.tracing.tracer()`) nests under it."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lcm_core import tracing

_TRACEPARENT = tracing.TRACEPARENT.encode()
_TRACESTATE = tracing.TRACESTATE.encode()


def _callers_context(scope: Scope) -> Context:
    """The context of the caller's `traceparent` and `tracestate` (checked and bounded by `tracing.extract`)."""
    traceparents: list[str] = []
    tracestates: list[str] = []
    # Header names come lower-cased in ASGI; a header sent several times is several entries: `tracestate` fields
    # are joined with commas (RFC 9110), more than one `traceparent` is no usable context.
    for name, value in scope.get("headers", ()):
        if name == _TRACEPARENT:
            traceparents.append(value.decode("latin-1"))
        elif name == _TRACESTATE:
            tracestates.append(value.decode("latin-1"))
    if len(traceparents) != 1:
        return Context()
    return tracing.extract(traceparents[0], ",".join(tracestates) if tracestates else None)


class RequestSpans:
    """Pure ASGI (not BaseHTTPMiddleware), so that streaming responses pass through untouched."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        method = scope["method"]
        # Tracing off (no endpoint configured): the caller's context is not even read.
        caller = _callers_context(scope) if tracing.enabled() else None
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
