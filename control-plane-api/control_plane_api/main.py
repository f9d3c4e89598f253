"""Application factory and entry point of the control-plane API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from control_plane_api.api import (
    admin,
    api_docs,
    auth,
    costs,
    dashboard,
    events,
    health,
    internal,
    internal_lablets,
    internal_pools,
    lablet_definitions,
    lablet_sessions,
    metrics,
    pools,
    tracing,
    workers,
)
from control_plane_api.api.errors import install_error_handlers
from control_plane_api.api.request_guard import AuthenticateFirst, BodyLimit
from control_plane_api.api.responses import document_error_answers, install_document
from control_plane_api.api.web_guard import WebGuard
from control_plane_api.bootstrap import ControlPlane
from control_plane_api.settings import ControlPlaneSettings
from lcm_core.logging import configure_logging
from lcm_core.settings import load_settings
from lcm_core.telemetry import exported_traces

SERVICE = "control-plane-api"


def create_app(settings: ControlPlaneSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        control_plane = ControlPlane.build(settings)
        app.state.control_plane = control_plane
        app.state.infrastructure = control_plane.infrastructure
        await control_plane.start()
        try:
            yield
        finally:
            await control_plane.stop()

    app = FastAPI(
        title="Lablet Cloud Manager — control plane API",
        version="0.1.0",
        lifespan=lifespan,
        # Served below behind authentication: nothing but health, readiness and login is public.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry (0.165+) stays off: requests are traced by api/tracing.py (one SERVER span,
        # the caller's child) and measured by api/metrics.py; with both, every request would be two spans.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.settings = settings
    # The last added runs first: the web guard, metrics (which also count these refusals), then
    # authentication from the headers, then the body limit, all before any body is read.
    app.add_middleware(BodyLimit, default_bytes=settings.max_body_bytes,
                       topology_bytes=settings.max_topology_body_bytes)
    app.add_middleware(AuthenticateFirst)
    app.state.metrics = metrics.install_metrics(app)
    install_error_handlers(app)
    # Outermost but for tracing: a cross-origin cookie request is refused before anything else, and every answer
    # (401 and 413 of the guards above included) gets the no-store / nosniff headers.
    app.add_middleware(WebGuard, public_origins=settings.public_origins)
    # Around everything, the web guard's refusals included: each request is a span (child of the caller's).
    tracing.install_tracing(app)
    app.include_router(api_docs.router(app))
    for router in (health.router, auth.router, auth.sso_router, workers.router, admin.settings_router,
                   admin.templates_router, admin.system_router, admin.sessions_router, lablet_definitions.router,
                   lablet_sessions.router, pools.router, events.router, internal.router, internal_lablets.router,
                   internal_pools.router, costs.router, metrics.router, dashboard.router):
        # Each route documents the error answers of its kind (401, 404, 409, 422...).
        document_error_answers(router)
        app.include_router(router)
    install_document(app)
    return app


def run() -> None:
    """Console entry point: `lcm-control-plane-api`."""
    settings = load_settings(ControlPlaneSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    with exported_traces(SERVICE, settings.otel_exporter_otlp_endpoint,
                         traces_endpoint=settings.otel_exporter_otlp_traces_endpoint):
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                    access_log=False, timeout_keep_alive=int(settings.keep_alive_seconds))


if __name__ == "__main__":
    run()
