"""The OTLP/HTTP receiver (lcm_core.testing.otlp_receiver) fed by the real OTLP exporter over loopback: what
it decodes, what it refuses, and the command operators run."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from lcm_core.telemetry import traces_url
from lcm_core.testing.otlp_receiver import (
    MAX_DECODED_BYTES,
    PROTOBUF,
    RECENT_SPANS_KEPT,
    TRACES_PATH,
    OtlpReceiver,
    ReceivedSpan,
    serve_receiver,
)
from lcm_core.testing.processes import free_port, port_is_open
from tests.fixtures.polling import wait_for


@pytest.fixture
def receiver():
    found = OtlpReceiver()
    with serve_receiver(found) as endpoint:
        yield found, endpoint


def export_a_trace(endpoint: str, service: str, compression: Compression = Compression.NoCompression) -> dict:
    """A root span with a child (CLIENT, failed) and a span linked to the child; their ids by name."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint),
                                                                     compression=compression)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("metrics.cycle", attributes={"lcm.workers.count": 2}) as root, \
            tracer.start_as_current_span("POST /api/x", kind=SpanKind.CLIENT) as child:
        child.set_attributes({"lcm.worker.id": "w-1", "ratio": 0.5, "ok": False, "regions": ["a", "b"]})
        child.set_status(Status(StatusCode.ERROR, "refused"))
    with tracer.start_as_current_span("metrics.report", links=[Link(child.get_span_context())]) as linked:
        pass
    provider.shutdown()
    return {"root": root.get_span_context(), "child": child.get_span_context(), "linked": linked.get_span_context()}


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_decodes_what_the_exporter_sends(receiver, compression: Compression) -> None:
    found, endpoint = receiver
    ids = export_a_trace(endpoint, "worker-controller", compression)
    spans = {s.name: s for s in found.wait_for("three spans", lambda spans: len(spans) == 3 and spans)}
    root, child, linked = spans["metrics.cycle"], spans["POST /api/x"], spans["metrics.report"]
    assert {s.service for s in spans.values()} == {"worker-controller"}
    assert root.trace_id == child.trace_id == f"{ids['root'].trace_id:032x}"
    assert root.span_id == f"{ids['root'].span_id:016x}"
    assert root.parent_span_id is None
    assert child.parent_span_id == root.span_id
    assert child.span_id == f"{ids['child'].span_id:016x}"
    assert (child.kind, child.status, root.kind, root.status) == ("CLIENT", "ERROR", "INTERNAL", "UNSET")
    assert child.attributes == {"lcm.worker.id": "w-1", "ratio": 0.5, "ok": False, "regions": ["a", "b"]}
    assert root.attributes == {"lcm.workers.count": 2}
    assert linked.links == (child.span_id,)
    assert linked.trace_id != root.trace_id


def test_one_line_per_span_names_service_trace_parent_and_attributes() -> None:
    span = ReceivedSpan(service="control-plane-api", trace_id="ab" * 16, span_id="cd" * 8, parent_span_id="ef" * 8,
                        name="POST /api/internal/workers/metrics:batch", kind="SERVER", status="ERROR",
                        attributes={"http.route": "/api/internal/workers/metrics:batch", "a": 1})
    assert span.line() == (f"control-plane-api trace={'ab' * 16} span={'cd' * 8} parent={'ef' * 8} "
                           "'POST /api/internal/workers/metrics:batch' SERVER status=ERROR "
                           "a=1 http.route=/api/internal/workers/metrics:batch")


@pytest.mark.parametrize(("path", "headers", "body", "status"), [
    ("/v1/metrics", {"Content-Type": "application/x-protobuf"}, b"", 404),
    ("/v1/traces", {"Content-Type": "application/json"}, b"{}", 415),
    ("/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}, b"x", 415),
    ("/v1/traces", {"Content-Type": "application/x-protobuf"}, b"\xff\xff\xff not protobuf", 400),
    ("/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, b"not gzip", 400),
    ("/v1/traces", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
     gzip.compress(b"\0" * (MAX_DECODED_BYTES + 1)), 413),
])
def test_refuses_what_is_not_an_otlp_trace_export(receiver, path: str, headers: dict, body: bytes,
                                                  status: int) -> None:
    found, endpoint = receiver
    assert httpx.post(f"{endpoint}{path}", content=body, headers=headers).status_code == status
    assert found.spans == []


def test_refuses_a_body_over_the_limit_without_reading_it(receiver) -> None:
    _found, endpoint = receiver
    host, port = endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # a client would refuse to lie
        raw.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 67108864\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 413 ")


def an_export(count: int) -> bytes:
    """One `ExportTraceServiceRequest` of `count` spans, each its own trace."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for i in range(count):
        span = scope.spans.add()
        span.trace_id = (i + 1).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = f"metrics.worker {i}"
    return request.SerializeToString()


def test_a_receiver_printing_each_span_keeps_only_the_latest() -> None:
    printed: list[str] = []
    receiver = OtlpReceiver(on_span=lambda span: printed.append(span.line()))  # what the command builds
    sent = 2 * RECENT_SPANS_KEPT + 100
    with serve_receiver(receiver) as endpoint, httpx.Client() as client:
        for start in range(0, sent, 512):  # the SDK's batches
            body = an_export(min(512, sent - start))
            answer = client.post(endpoint + TRACES_PATH, content=body, headers={"Content-Type": PROTOBUF})
            assert answer.status_code == 200
    assert len(printed) == sent  # all of them printed, in the order received
    assert printed[0].split()[1] == f"trace={1:032x}"
    kept = receiver.spans
    assert len(kept) == RECENT_SPANS_KEPT
    assert kept[-1].line() == printed[-1]
    assert kept[0].line() == printed[-RECENT_SPANS_KEPT]


def test_a_connection_that_goes_silent_is_closed() -> None:
    with serve_receiver(OtlpReceiver(), idle_timeout=0.2) as endpoint:
        host, port = endpoint.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            raw.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # and then nothing
            assert raw.recv(64) == b""  # closed by the receiver (a test's 30 s would raise TimeoutError)


def test_the_command_prints_each_span_it_receives(tmp_path) -> None:
    port = free_port()
    command = subprocess.Popen([sys.executable, "-m", "lcm_core.testing.otlp_receiver", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for("the receiver to listen", lambda: port_is_open("127.0.0.1", port))
        ids = export_a_trace(f"http://127.0.0.1:{port}", "lablet-controller")
    finally:
        command.terminate()
        out, _ = command.communicate(timeout=10)
    lines = out.splitlines()
    assert len(lines) == 3
    root = next(line for line in lines if "'metrics.cycle'" in line)
    assert root.startswith(f"lablet-controller trace={ids['root'].trace_id:032x} span={ids['root'].span_id:016x} "
                           "parent=- 'metrics.cycle' INTERNAL")
    assert root.endswith("lcm.workers.count=2")
