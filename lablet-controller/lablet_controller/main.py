"""Entry point of the lablet-controller: elect a leader through etcd and serve health and status."""

from __future__ import annotations

from lablet_controller.settings import LabletControllerSettings
from lcm_core.controller_host import ControllerHost, run_controller
from lcm_core.settings import load_settings

SERVICE = "lablet-controller"


def build_host(settings: LabletControllerSettings) -> ControllerHost:
    return ControllerHost(SERVICE, settings, lease_ttl_seconds=settings.leader_lease_ttl)


def run() -> None:
    """Console entry point: `lcm-lablet-controller`."""
    settings = load_settings(LabletControllerSettings)
    run_controller(SERVICE, settings, build_host(settings), settings.port)


if __name__ == "__main__":
    run()
