"""OpenTelemetry setup: a real tracer provider with an OTLP exporter when an endpoint is configured,
the API's no-op tracer otherwise (zero overhead, nothing to run locally)."""

from __future__ import annotations

import logging

from opentelemetry import trace

logger = logging.getLogger(__name__)


def configure_telemetry(service_name: str, otlp_endpoint: str | None) -> trace.Tracer:
    """Configure tracing for this process and return its tracer.

    Without `otlp_endpoint` the global provider stays the API default, whose spans are no-ops.
    """
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logger.warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed "
                "(install lcm-core[otlp]); tracing stays off"
            )
            return trace.get_tracer(service_name)
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        logger.info("tracing exported to %s", endpoint)
    return trace.get_tracer(service_name)
