"""The settings a cycle runs with: SystemSettings from the control plane, re-read every cycle, with the
environment as the fallback when the control plane cannot be asked (docs/architecture.md, 'Settings precedence')."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lcm_core.errors import LcmError
from worker_controller.application.ports import SettingsSource
from worker_controller.settings import WorkerControllerSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FleetSettings:
    discovery_enabled: bool
    regions: tuple[str, ...]
    ami_name_pattern: str
    discovery_interval: float
    metrics_interval: float
    source: str
    """`control-plane` or `environment`."""


class FleetSettingsReader:
    def __init__(self, gateway: SettingsSource, env: WorkerControllerSettings) -> None:
        self._gateway = gateway
        self._env = env
        self.current = self.fallback()

    def fallback(self) -> FleetSettings:
        env = self._env
        return FleetSettings(env.discovery_enabled, tuple(env.discovery_regions), env.discovery_ami_name,
                             env.discovery_interval_seconds, env.metrics_poll_interval_seconds, "environment")

    async def refresh(self) -> FleetSettings:
        try:
            stored = await self._gateway.settings()
            # A section an operator never set holds defaults: the deployment's environment is more specific.
            customized = set(stored.get("customized") or ())
            env = self.fallback()
            discovery, monitoring = stored["discovery"], stored["monitoring"]
            if "discovery" in customized:
                env = FleetSettings(bool(discovery["enabled"]), tuple(discovery["regions"]),
                                    str(discovery["ami_name_pattern"]), float(discovery["scan_interval_seconds"]),
                                    env.metrics_interval, "control-plane")
            if "monitoring" in customized:
                env = FleetSettings(env.discovery_enabled, env.regions, env.ami_name_pattern, env.discovery_interval,
                                    float(monitoring["metrics_poll_interval_seconds"]), "control-plane")
            self.current = env
        except (LcmError, KeyError, TypeError, ValueError) as exc:
            logger.warning("could not read settings from the control plane (%s); using the environment", exc)
            self.current = self.fallback()
        return self.current
