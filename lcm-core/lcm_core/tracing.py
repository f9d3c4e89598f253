"""Tracing vocabulary shared by the services: the tracer, the span attributes operators search by, and the
W3C trace-context propagation between a controller and the control plane (docs/tracing.md).

Only the OpenTelemetry API is used here (what a library instruments with): without a configured provider
(`lcm_core.telemetry`) every span is a no-op. The domain packages never import this; application code does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping

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


def extract(headers: Mapping[str, str]) -> context.Context:
    """The caller's context from incoming request headers (empty when the caller sent none)."""
    return propagate.extract(headers)
