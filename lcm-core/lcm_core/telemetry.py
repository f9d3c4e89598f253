"""OpenTelemetry setup of a service process: a tracer provider exporting over OTLP/HTTP when an endpoint is
configured, the API's no-op provider otherwise (zero overhead, nothing to run locally).

The provider batches spans in memory; `exported_traces` shuts it down when the service stops (Ctrl-C of
`make run`, SIGTERM of a pod), which flushes the last batch: without that the spans of the final seconds
(the unit of work that was interrupted, often the interesting one) would be lost.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_MILLIS = 5_000
"""How long a stopping service waits for its last spans to reach the collector."""


def traces_url(otlp_endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector's base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT gives it): its
    path with `/v1/traces` appended (a query stays a query)."""
    parts = urlsplit(otlp_endpoint)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v1/traces"))


def loggable_url(url: str) -> str:
    """`url` without what may be a credential: the user-info (a collector behind basic auth takes it there) and
    the query (a token). Scheme, host, port and path stay, to tell where the spans go."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def default_instance_id() -> str:
    """What tells this process apart from the other replicas of its service: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def configure_telemetry(service_name: str, otlp_endpoint: str | None, *, traces_endpoint: str | None = None,
                        instance_id: str | None = None) -> TracerProvider | None:
    """Install this process's tracer provider; None (tracing off) without an endpoint.

    `otlp_endpoint` is the collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT, spans go to its `/v1/traces`);
    `traces_endpoint` (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), when given, is the traces URL itself and wins, as
    the OpenTelemetry specification says. `instance_id` becomes `service.instance.id` (default: host name and
    process id), so two replicas of a service are told apart in a backend.

    The global provider can be set once per process: call this once, from the entry point.
    """
    endpoint = traces_endpoint or (traces_url(otlp_endpoint) if otlp_endpoint else None)
    if not endpoint:
        return None
    instance = instance_id or default_instance_id()
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_INSTANCE_ID: instance})
    # shutdown_on_exit=False: the entry point shuts it down itself, once, while the event loop's work is over.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    logger.info("tracing exported to %s as service %s, instance %s", loggable_url(endpoint), service_name,
                instance)
    return provider


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def exported_traces(service_name: str, otlp_endpoint: str | None, *, traces_endpoint: str | None = None,
                    instance_id: str | None = None) -> Iterator[TracerProvider | None]:
    """Tracing for the body (a service's serve call): configured on entry (`configure_telemetry`), flushed and
    shut down on exit.

    uvicorn shuts down gracefully on SIGTERM, then raises the signal again once its own handler is gone: with
    the default action the process would die right there, before this flush. Meanwhile SIGTERM raises
    SystemExit instead, which unwinds through here (the exit status stays 128 + SIGTERM).
    """
    provider = configure_telemetry(service_name, otlp_endpoint, traces_endpoint=traces_endpoint,
                                   instance_id=instance_id)
    previous = None
    if provider is not None and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield provider
    finally:
        if provider is not None:
            if not provider.force_flush(SHUTDOWN_TIMEOUT_MILLIS):
                logger.warning("the last spans could not be exported within %d ms", SHUTDOWN_TIMEOUT_MILLIS)
            provider.shutdown()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
