"""The CPA's side of propagation (a real CPA on loopback, in this process): each request is one SERVER span
named by method and route template, child of the caller's span when the request carries `traceparent`, with
the CPA's own work under it."""

from __future__ import annotations

import logging

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lcm_core import tracing
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.errors import NotFoundError
from tests.fixtures.control_plane import API_KEY
from tests.fixtures.polling import wait_for
from tests.fixtures.tracing import context_of, traced


def server_spans(spans: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """The SERVER spans in the order their requests came, once `count` of them have ended (a span ends just
    after its response went out)."""
    found: list[ReadableSpan] = wait_for(f"{count} server spans", lambda: len(ended := [
        s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]) == count and ended)
    return sorted(found, key=lambda s: s.start_time or 0)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    with traced(SimpleSpanProcessor(exporter)):
        yield exporter


async def test_a_controller_call_is_a_server_span_child_of_the_callers_client_span(control_plane, spans) -> None:
    async with ControlPlaneClient(control_plane.url, API_KEY) as client:
        with tracing.tracer().start_as_current_span("unit-of-work"):
            await client.get("/api/internal/workers", status="running")
            with pytest.raises(NotFoundError):
                await client.get("/api/internal/workers/no-such-worker-0000000000000000")
    servers = server_spans(spans, 2)
    finished = spans.get_finished_spans()
    clients = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert len(clients) == 2
    by_parent = {s.parent.span_id: s for s in servers if s.parent is not None}
    listed, missing = (by_parent[context_of(c).span_id] for c in clients)
    for server, client_span in ((listed, clients[0]), (missing, clients[1])):
        assert context_of(server).trace_id == context_of(client_span).trace_id
    assert listed.name == "GET /api/internal/workers"
    assert listed.attributes is not None
    assert listed.attributes["http.route"] == "/api/internal/workers"
    assert listed.attributes["http.response.status_code"] == 200
    assert missing.name == "GET /api/internal/workers/{worker_id}"
    assert missing.attributes is not None
    assert missing.attributes["http.response.status_code"] == 404
    assert missing.status.status_code is StatusCode.UNSET  # the caller's mistake, not a server error
    # FastAPI's own request spans are off: one SERVER span per request, nothing else from the framework.
    assert not [s for s in finished if s.name.startswith("fastapi.")]


def test_a_request_without_traceparent_starts_a_trace(control_plane, spans) -> None:
    assert httpx.get(f"{control_plane.url}/api/health").status_code == 200
    unknown = httpx.get(f"{control_plane.url}/api/no-such-route", headers=control_plane.viewer())
    assert unknown.status_code == 404
    health, unmatched = server_spans(spans, 2)
    assert health.parent is None
    assert health.name == "GET /api/health"
    assert unmatched.parent is None
    assert unmatched.name == "GET"
    assert unmatched.attributes is not None
    assert unmatched.attributes["url.path"] == "/api/no-such-route"
    assert context_of(health).trace_id != context_of(unmatched).trace_id


def test_a_malformed_traceparent_is_ignored(control_plane, spans) -> None:
    answer = httpx.get(f"{control_plane.url}/api/health", headers={"traceparent": "00-not-a-trace-context"})
    assert answer.status_code == 200
    (server,) = server_spans(spans, 1)
    assert server.parent is None


def test_a_metrics_report_shows_the_cpa_writes_under_its_request(control_plane, spans) -> None:
    body: dict[str, list[object]] = {"reports": []}
    answer = httpx.post(f"{control_plane.url}/api/internal/workers/metrics:batch", json=body,
                        headers=control_plane.leader())
    assert answer.status_code == 200
    (server,) = server_spans(spans, 1)
    finished = spans.get_finished_spans()
    assert server.name == "POST /api/internal/workers/metrics:batch"
    children = {s.name: s for s in finished if s.parent is not None
                and s.parent.span_id == context_of(server).span_id}
    assert set(children) == {"metrics.load", "metrics.store", "metrics.publish"}
    assert children["metrics.load"].attributes == {tracing.REPORTS_COUNT: 0}


CALLERS_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
"""A valid W3C traceparent: trace 0af7..., span b7ad..., sampled."""


def opentelemetry_warnings(caplog: pytest.LogCaptureFixture, echoed: str) -> list[str]:
    return [f"{r.name}: {r.getMessage()[:80]}" for r in caplog.records
            if r.levelno >= logging.WARNING and (r.name.startswith("opentelemetry") or echoed in r.getMessage())]


@pytest.mark.parametrize(("header", "value"), [
    ("tracestate", "x" * 4000 + "=\u00e9"),  # not a W3C list-member
    ("tracestate", ",".join(f"k{i}=v" for i in range(40))),  # over W3C's 32 list-members
    ("tracestate", ",".join(f"vendor{i}=" + "v" * 40 for i in range(12))),  # over the 512 characters
    ("baggage", "k=" + "v" * 9000),  # over the baggage propagator's 8192 bytes
])
def test_anonymous_trace_context_headers_cannot_write_to_the_log(control_plane, spans, caplog, header: str,
                                                                 value: str) -> None:
    """OpenTelemetry logs a WARNING quoting each malformed or oversized header it parses: the CPA checks and
    bounds them first, so a caller cannot have its own text logged at every request. The caller's traceparent
    still counts; what is invalid beside it is dropped, as W3C says."""
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            answer = httpx.get(f"{control_plane.url}/api/health",
                               headers={b"traceparent": CALLERS_TRACEPARENT.encode(),
                                        header.encode(): value.encode("latin-1")})
            assert answer.status_code == 200
    servers = server_spans(spans, 5)
    assert opentelemetry_warnings(caplog, value[:100]) == []
    for server in servers:
        assert server.parent is not None
        assert f"{server.parent.trace_id:032x}-{server.parent.span_id:016x}" in CALLERS_TRACEPARENT
        assert not context_of(server).trace_state


def test_an_oversized_traceparent_starts_a_trace_without_a_warning(control_plane, spans, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        answer = httpx.get(f"{control_plane.url}/api/health",
                           headers={"traceparent": CALLERS_TRACEPARENT[:-2] + "01-" + "f" * 600})
    assert answer.status_code == 200
    (server,) = server_spans(spans, 1)
    assert server.parent is None
    assert opentelemetry_warnings(caplog, "f" * 100) == []


def test_a_valid_tracestate_goes_on_with_the_callers_trace(control_plane, spans) -> None:
    answer = httpx.get(f"{control_plane.url}/api/health",
                       headers={"traceparent": CALLERS_TRACEPARENT, "tracestate": "congo=t61rcWkgMzE, rojo=00f067"})
    assert answer.status_code == 200
    (server,) = server_spans(spans, 1)
    assert server.parent is not None
    assert server.parent.trace_id == int(CALLERS_TRACEPARENT.split("-")[1], 16)
    assert dict(context_of(server).trace_state) == {"congo": "t61rcWkgMzE", "rojo": "00f067"}
