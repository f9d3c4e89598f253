"""Propagation from the controllers' side: each attempt of the control-plane client is a CLIENT span, child of
the caller's span, whose context the server receives as W3C `traceparent` (a real server on loopback)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lcm_core import tracing
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.errors import NotFoundError
from lcm_core.testing.asgi_server import serve_in_thread
from tests.fixtures.tracing import traced

received: list[str | None] = []


def build_app() -> FastAPI:
    app = FastAPI(telemetry={"tracing": False})  # its own server spans: only the client's are looked at here

    @app.post("/api/internal/workers/{worker_id}/status")
    async def flaky(worker_id: str, request: Request) -> JSONResponse:
        received.append(request.headers.get("traceparent"))
        if len(received) < 3:
            return JSONResponse({"detail": "try later"}, status_code=503)
        return JSONResponse({"id": worker_id})

    @app.get("/api/internal/missing")
    async def missing(request: Request) -> JSONResponse:
        received.append(request.headers.get("traceparent"))
        return JSONResponse({"detail": "no such thing"}, status_code=404)

    return app


@pytest.fixture(scope="module")
def server_url():
    with serve_in_thread(build_app()) as url:
        yield url


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    received.clear()
    with traced(SimpleSpanProcessor(exporter)):
        yield exporter


def traceparent(trace_id: int, span_id: int) -> str:
    """The header a sampled span sends (version 00; the flags byte's sampled bit is checked apart)."""
    return f"00-{trace_id:032x}-{span_id:016x}"


async def test_every_attempt_is_a_client_span_under_the_callers_and_sends_its_traceparent(server_url, spans) -> None:
    worker_id = "0f3c2a9d8b7e4c1a9e2d3f4a5b6c7d8e"
    async with ControlPlaneClient(server_url, "k-123456", backoff_base=0.01) as client:
        with tracing.tracer().start_as_current_span("unit-of-work") as work:
            assert await client.post(f"/api/internal/workers/{worker_id}/status", {}) == {"id": worker_id}
    parent = work.get_span_context()
    attempts = sorted((s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT),
                      key=lambda s: s.start_time or 0)
    assert len(attempts) == len(received) == 3
    for attempt, header in zip(attempts, received, strict=True):
        context = attempt.get_span_context()
        assert attempt.parent is not None
        assert attempt.parent.span_id == parent.span_id
        assert context.trace_id == parent.trace_id
        assert header is not None
        assert header.startswith(traceparent(context.trace_id, context.span_id))
        assert int(header[-2:], 16) & 1  # sampled
        assert attempt.name == "POST /api/internal/workers/{id}/status"
        assert attempt.attributes is not None
        assert attempt.attributes["url.path"] == f"/api/internal/workers/{worker_id}/status"
    assert [a.attributes.get("http.response.status_code") for a in attempts if a.attributes] == [503, 503, 200]
    assert [a.attributes.get("http.request.resend_count") for a in attempts if a.attributes] == [None, 1, 2]
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]


async def test_a_refused_request_is_an_error_span(server_url, spans) -> None:
    async with ControlPlaneClient(server_url, "k-123456") as client:
        with pytest.raises(NotFoundError):
            await client.get("/api/internal/missing")
    (attempt,) = spans.get_finished_spans()
    assert attempt.parent is None  # no unit of work around it: a trace of its own
    assert received[0] is not None
    assert received[0].startswith(
        traceparent(attempt.get_span_context().trace_id, attempt.get_span_context().span_id))
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "404"


@pytest.mark.parametrize(("path", "name"), [
    ("/api/internal/workers/metrics:batch", "POST /api/internal/workers/metrics:batch"),
    ("/api/internal/workers/bulk-import", "POST /api/internal/workers/bulk-import"),
    ("/api/internal/workers/i-0123456789abcdef0/status", "POST /api/internal/workers/{id}/status"),
    ("/api/internal/templates/cml-default", "POST /api/internal/templates/cml-default"),
    ("/api/internal/pools/6f1e2d3c4b5a69788796a5b4c3d2e1f0?x=1", "POST /api/internal/pools/{id}"),
])
def test_span_names_keep_the_path_but_not_its_identifiers(path: str, name: str) -> None:
    assert tracing.span_name("POST", path) == name
