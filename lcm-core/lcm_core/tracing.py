"""Tracing vocabulary shared by the services: the tracer, the span attributes operators search by, and the
W3C trace-context propagation between a controller and the control plane (docs/tracing.md).

Only the OpenTelemetry API is used here (what a library instruments with): without a configured provider
(`lcm_core.telemetry`) every span is a no-op. The domain packages never import this; application code does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from opentelemetry import context, propagate, trace

# Attribute names: OpenTelemetry's semantic conventions where one fits (cloud.*, http.*, url.*, server.*),
# `lcm.*` for LCM's own objects.
WORKER_ID = "lcm.worker.id"
SESSION_ID = "lcm.session.id"
POOL_ID = "lcm.pool.id"
WORKERS_COUNT = "lcm.workers.count"
"""Workers a unit of work covered (a metrics cycle, a report batch)."""
REPORTS_COUNT = "lcm.metrics.reports"
INSTANCE_ID = "aws.ec2.instance.id"
CLOUD_PROVIDER = "cloud.provider"
CLOUD_REGION = "cloud.region"
CML_HOST = "server.address"
"""The CML host a worker-level span talked to (its URL)."""

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

MAX_TRACEPARENT_CHARS = 128
"""Longer than any `traceparent` a tracer sends (version 00 is 55 characters; a later version may append
fields): a longer one is ignored (the request starts a trace) before OpenTelemetry sees it."""
MAX_TRACESTATE_CHARS = 512
"""W3C Trace Context: a vendor must propagate at least 512 characters of `tracestate` and may drop it whole when
longer. Beyond this it is dropped (the caller's `traceparent` is still honoured)."""
MAX_TRACESTATE_MEMBERS = 32
"""W3C Trace Context's limit on `tracestate` list-members."""
_TRACESTATE_MEMBER = re.compile(
    r"(?:[a-z][_0-9a-z*/-]{0,255}|[a-z0-9][_0-9a-z*/-]{0,240}@[a-z][_0-9a-z*/-]{0,13})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
"""One `tracestate` list-member (key=value) in W3C's grammar."""

_ID_SEGMENT = re.compile(r"^(?=.*\d)[\w.:-]{16,}$")
"""A path segment that is an identifier (long, with digits: a uuid hex, an instance id): replaced by `{id}` in
span names, which must stay few (the full path is in `url.path`)."""


def tracer() -> trace.Tracer:
    """LCM's tracer. Taken at each use: it is the global provider's, installed by the entry point."""
    return trace.get_tracer("lcm")


def span_name(method: str, path: str) -> str:
    """A client span's name: the method and the path with its identifiers replaced (`POST
    /api/internal/workers/{id}/status`)."""
    segments = ["{id}" if _ID_SEGMENT.match(segment) else segment for segment in path.split("?", 1)[0].split("/")]
    return f"{method} {'/'.join(segments)}"


def inject(headers: MutableMapping[str, str]) -> None:
    """Write the current span's context into outgoing request headers (W3C `traceparent`, `tracestate`)."""
    propagate.inject(headers)


def enabled() -> bool:
    """Whether this process records spans (an entry point installed a provider): without one, a request's
    trace context need not even be read."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _valid_tracestate(value: str) -> bool:
    if len(value) > MAX_TRACESTATE_CHARS:
        return False
    members = [member.strip(" \t") for member in value.split(",")]
    members = [member for member in members if member]  # empty list-members are allowed, and mean nothing
    keys = {member.split("=", 1)[0] for member in members}
    return (len(members) <= MAX_TRACESTATE_MEMBERS and len(keys) == len(members)
            and all(_TRACESTATE_MEMBER.fullmatch(member) for member in members))


def extract(traceparent: str | None, tracestate: str | None = None) -> context.Context:
    """The caller's context from its `traceparent` and `tracestate` request headers (several `tracestate` fields
    joined with commas); an empty context when it sent no usable `traceparent`.

    The headers come from anyone (the CPA's public routes are traced too): they are bounded and checked here
    first, because OpenTelemetry logs a WARNING quoting each malformed or oversized value it parses, which
    would let any caller write its own text into the service's log at every request. An invalid `tracestate`
    is dropped (W3C: it must not be propagated); the `traceparent` it came with still counts.
    """
    if not traceparent or len(traceparent) > MAX_TRACEPARENT_CHARS:
        return context.Context()
    headers = {TRACEPARENT: traceparent}
    if tracestate is not None and _valid_tracestate(tracestate):
        headers[TRACESTATE] = tracestate
    # Only these two headers reach the propagators: the baggage one (on by default) would parse and log others.
    return propagate.extract(headers)


@contextmanager
def unsampled() -> Iterator[trace.Span]:
    """Within the block the current trace goes on unsampled: spans opened under it are dropped by the
    parent-based samplers (the SDK's default), and the `traceparent` sent to the CPA says so, so its spans are
    dropped too. For work a unit of work does too much of to trace every piece (`sessions.schedule`)."""
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        yield trace.INVALID_SPAN
        return
    quiet = trace.NonRecordingSpan(trace.SpanContext(
        current.trace_id, current.span_id, is_remote=False, trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
        trace_state=current.trace_state))
    with trace.use_span(quiet, end_on_exit=False):
        yield quiet
