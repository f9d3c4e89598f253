"""Application factory and entry point of the control-plane API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from control_plane_api.api import health
from control_plane_api.infrastructure.dependencies import Infrastructure
from control_plane_api.settings import ControlPlaneSettings
from lcm_core.logging import configure_logging
from lcm_core.telemetry import configure_telemetry

SERVICE = "control-plane-api"


def create_app(settings: ControlPlaneSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.infrastructure = Infrastructure.connect(settings)
        try:
            yield
        finally:
            await app.state.infrastructure.close()

    app = FastAPI(
        title="Lablet Cloud Manager — control plane API",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.include_router(health.router)
    return app


def run() -> None:
    """Console entry point: `lcm-control-plane-api`."""
    settings = ControlPlaneSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    configure_telemetry(SERVICE, settings.otel_exporter_otlp_endpoint)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False)


if __name__ == "__main__":
    run()
