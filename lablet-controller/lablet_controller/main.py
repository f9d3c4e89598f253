"""Entry point of the lablet-controller: elect a leader through etcd and serve health and status."""

from __future__ import annotations

import uvicorn

from lablet_controller.settings import LabletControllerSettings
from lcm_core.controller_host import ControllerHost
from lcm_core.logging import configure_logging
from lcm_core.settings import load_settings
from lcm_core.telemetry import configure_telemetry

SERVICE = "lablet-controller"


def build_host(settings: LabletControllerSettings) -> ControllerHost:
    return ControllerHost(SERVICE, settings, lease_ttl_seconds=settings.leader_lease_ttl)


def run() -> None:
    """Console entry point: `lcm-lablet-controller`."""
    settings = load_settings(LabletControllerSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    configure_telemetry(SERVICE, settings.otel_exporter_otlp_endpoint)
    app = build_host(settings).create_app()
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    run()
