"""The simulator's ASGI application: every simulated host's CML API plus the `/_admin` control API."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from lcm_core.testing.cml_simulator import routes_admin, routes_labs, routes_licensing, routes_nodes, routes_system
from lcm_core.testing.cml_simulator.config import SimulatorConfig
from lcm_core.testing.cml_simulator.errors import install_error_handlers
from lcm_core.testing.cml_simulator.faults import FaultMiddleware, FaultRegistry
from lcm_core.testing.cml_simulator.state import SimulatorState


def create_fastapi(config: SimulatorConfig | None = None) -> FastAPI:
    """The FastAPI app alone (no fault middleware); `app.state.simulator`/`.faults` hold the state."""
    config = config or SimulatorConfig()
    app = FastAPI(title="CML 2.9 simulator", docs_url="/_admin/docs", redoc_url=None,
                  openapi_url="/_admin/openapi.json")
    app.state.simulator = SimulatorState(config)
    app.state.faults = FaultRegistry()
    install_error_handlers(app)
    # Routes are matched in order, one pattern at a time: the endpoints a metrics cycle calls for every host
    # (system, licensing, labs) come first and the admin API last (paths of the groups never overlap).
    for module in (routes_system, routes_licensing, routes_labs, routes_nodes, routes_admin):
        app.include_router(module.router)
    return app


def create_app(config: SimulatorConfig | None = None) -> ASGIApp:
    """The served app: faults are applied outside FastAPI, where the connection can still be dropped."""
    app = create_fastapi(config)
    return FaultMiddleware(app, app.state.faults)
