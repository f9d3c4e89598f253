"""The simulator's ASGI application: every simulated host's CML API plus the `/_admin` control API."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from lcm_core.testing.cml_simulator import routes_admin, routes_labs, routes_licensing, routes_nodes, routes_system
from lcm_core.testing.cml_simulator.config import SimulatorConfig
from lcm_core.testing.cml_simulator.errors import install_error_handlers
from lcm_core.testing.cml_simulator.fastlane import FastLane
from lcm_core.testing.cml_simulator.faults import FaultMiddleware, FaultRegistry
from lcm_core.testing.cml_simulator.state import SimulatorState

ROUTERS = tuple(module.router for module in (routes_system, routes_licensing, routes_labs, routes_nodes,
                                             routes_admin))
#: What a metrics cycle asks every host (the LCM client's authenticate, system_information, system_stats,
#: system_health, licensing, labs; authok and telemetry events besides): answered by `FastLane`.
HOT_ENDPOINTS = (
    routes_system.authenticate, routes_system.authok, routes_system.system_information,
    routes_system.system_stats, routes_system.system_health, routes_system.telemetry_events,
    routes_licensing.licensing, routes_labs.list_labs,
)


def create_fastapi(config: SimulatorConfig | None = None) -> FastAPI:
    """The FastAPI app alone (no fault middleware); `app.state.simulator`/`.faults` hold the state."""
    config = config or SimulatorConfig()
    app = FastAPI(title="CML 2.9 simulator", docs_url="/_admin/docs", redoc_url=None,
                  openapi_url="/_admin/openapi.json")
    app.state.simulator = SimulatorState(config)
    app.state.faults = FaultRegistry()
    install_error_handlers(app)
    # Routes are matched in order, one pattern at a time: the endpoints a metrics cycle calls for every host
    # (system, licensing, labs) come first and the admin API last (paths of the groups never overlap); the
    # hottest of them rarely get here in the served app (see `create_app`).
    for router in ROUTERS:
        app.include_router(router)
    return app


def create_app(config: SimulatorConfig | None = None) -> ASGIApp:
    """The served app: faults are applied outside FastAPI, where the connection can still be dropped.

    Inside the faults, `FastLane` answers the hot endpoints without FastAPI's routing and dependency
    machinery (same routes, same answers, less than half the CPU per request) and passes the rest to FastAPI.
    """
    app = create_fastapi(config)
    return FaultMiddleware(FastLane(app, ROUTERS, HOT_ENDPOINTS), app.state.faults)
