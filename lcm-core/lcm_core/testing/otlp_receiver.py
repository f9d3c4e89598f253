"""A minimal OTLP/HTTP trace receiver: what the services export, decoded and kept (tests) or printed, one line
per span (an operator watching `make run` locally, without a tracing backend):

    .venv/bin/python -m lcm_core.testing.otlp_receiver --port 4318
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 make run

It accepts `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf (what the OTLP/HTTP exporter
sends; gzip or deflate too) and answers the empty `ExportTraceServiceResponse`. Nothing is stored but in
memory (the printing receiver keeps only the latest spans).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

TRACES_PATH = "/v1/traces"
MAX_BODY_BYTES = 32 * 1024 * 1024
"""Larger than any batch the SDK sends (512 spans); a body over it is refused (413), not read."""
PROTOBUF = "application/x-protobuf"
MAX_DECODED_BYTES = 4 * MAX_BODY_BYTES
"""A compressed body inflating past this is refused (413): a small body cannot take the memory."""
IDLE_TIMEOUT_SECONDS = 60.0
"""A connection's socket timeout: longer than the SDK's pause between exports (5 s, OTEL_BSP_SCHEDULE_DELAY), so
the exporter's kept-alive connection is reused, while a client that connects and stalls does not hold a thread
(and its socket) forever."""


class TooLarge(ValueError):
    pass


def _inflate(wbits: int) -> Callable[[bytes], bytes]:
    def inflate(body: bytes) -> bytes:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, MAX_DECODED_BYTES)
        if inflater.unconsumed_tail:
            raise TooLarge(f"more than {MAX_DECODED_BYTES} bytes once decompressed")
        return out
    return inflate


DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {"identity": bytes, "gzip": _inflate(16 + zlib.MAX_WBITS),
                                                   "deflate": _inflate(zlib.MAX_WBITS)}
"""What the OTLP exporter may compress with (OTEL_EXPORTER_OTLP_COMPRESSION)."""

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    """32 hex digits."""
    span_id: str
    parent_span_id: str | None
    """16 hex digits; None for a root span."""
    name: str
    kind: str
    """SERVER, CLIENT, INTERNAL..."""
    status: str
    """UNSET, OK or ERROR."""
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[str, ...] = ()
    """The span ids this span links to."""
    instance: str | None = None
    """The exporting process's `service.instance.id` (None when it sent none)."""

    def line(self) -> str:
        """One line for a terminal: service, trace, span, parent, name, kind, status, then the attributes."""
        attributes = " ".join(f"{key}={value}" for key, value in sorted(self.attributes.items()))
        status = "" if self.status == "UNSET" else f" status={self.status}"
        return (f"{self.service} trace={self.trace_id} span={self.span_id} parent={self.parent_span_id or '-'} "
                f"{self.name!r} {self.kind}{status} {attributes}").rstrip()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one `ExportTraceServiceRequest` (protobuf). Raises DecodeError on a body that is not one."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown"))
        instance = resource.get("service.instance.id")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(ReceivedSpan(
                    service=service, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex() or None, name=span.name,
                    kind=SPAN_KINDS.get(span.kind, str(span.kind)), status=STATUS_CODES.get(span.status.code, "?"),
                    attributes=_attributes(span.attributes), links=tuple(link.span_id.hex() for link in span.links),
                    instance=None if instance is None else str(instance)))
    return spans


RECENT_SPANS_KEPT = 1_000
"""Spans a receiver handing each span on (`on_span`: the printing one, left running beside `make run`) keeps:
the latest only, so its memory does not grow with every metrics cycle for as long as it runs."""


class OtlpReceiver:
    """The spans received so far (thread-safe), and whoever wants each one as it comes (`on_span`). With
    `on_span` only the latest `RECENT_SPANS_KEPT` are kept; without it (a test's receiver) every one is."""

    def __init__(self, on_span: Callable[[ReceivedSpan], None] | None = None) -> None:
        self._spans: deque[ReceivedSpan] = deque(maxlen=RECENT_SPANS_KEPT if on_span is not None else None)
        self._changed = threading.Condition()
        self._on_span = on_span

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self._changed:
            self._spans.extend(spans)
            self._changed.notify_all()
        if self._on_span is not None:
            for span in spans:
                self._on_span(span)

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            return list(self._spans)

    def wait_for(self, what: str, probe: Callable[[list[ReceivedSpan]], Any], timeout: float = 30.0) -> Any:
        """probe(spans)'s first truthy value, asked again as spans arrive; fails naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := probe(list(self._spans))):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what} ({len(self._spans)} spans received)")
                self._changed.wait(left)
            return found


def _handler(receiver: OtlpReceiver, idle_timeout: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the exporter reuses its connection
        timeout = idle_timeout
        """A connection silent this long (between requests or within one) is closed, its thread freed."""

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the spans are the output."""

        def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != TRACES_PATH:
                self._answer(404, b"only POST /v1/traces is received here\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, b"Content-Length required\n")
                return
            if not 0 <= length <= MAX_BODY_BYTES:
                self.close_connection = True  # the body is not read: the connection cannot be reused
                self._answer(413, b"body too large\n")
                return
            body = self.rfile.read(length)
            if self.headers.get_content_type() != PROTOBUF:
                self._answer(415, b"OTLP/HTTP protobuf only (application/x-protobuf)\n")
                return
            encoding = self.headers.get("Content-Encoding", "identity").lower()
            if encoding not in DECOMPRESS:
                self._answer(415, b"Content-Encoding: gzip, deflate or none\n")
                return
            try:
                spans = decode(DECOMPRESS[encoding](body))
            except TooLarge as exc:
                self._answer(413, f"{exc}\n".encode())
                return
            except (DecodeError, zlib.error) as exc:
                self._answer(400, f"not an OTLP trace export: {exc}\n".encode())
                return
            receiver.add(spans)
            self._answer(200, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)

    return Handler


@contextmanager
def serve_receiver(receiver: OtlpReceiver, host: str = "127.0.0.1", port: int = 0,
                   idle_timeout: float = IDLE_TIMEOUT_SECONDS) -> Iterator[str]:
    """Yield the endpoint to give as OTEL_EXPORTER_OTLP_ENDPOINT (`http://host:port`) while `receiver` serves."""
    server = ThreadingHTTPServer((host, port), _handler(receiver, idle_timeout))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lcm_core.testing.otlp_receiver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=4318, help="port (default 4318, OTLP/HTTP's)")
    opts = parser.parse_args(argv)

    def show(span: ReceivedSpan) -> None:
        print(span.line(), flush=True)

    with serve_receiver(OtlpReceiver(on_span=show), opts.host, opts.port) as endpoint:
        print(f"receiving OTLP/HTTP traces on {endpoint}{TRACES_PATH} (Ctrl-C stops)", file=sys.stderr, flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
