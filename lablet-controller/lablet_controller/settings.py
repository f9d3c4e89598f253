"""Settings of the lablet-controller (one typed object, injected)."""

from __future__ import annotations

from pydantic import Field

from lcm_core.controller_host import CmlAccessSettings, ControllerSettings


class LabletControllerSettings(ControllerSettings, CmlAccessSettings):
    """Everything the lablet-controller reads from its environment."""

    port: int = Field(default=8032, ge=1, le=65535, validation_alias="LABLET_CONTROLLER_PORT")
    """Port of the health/status HTTP server."""

    leader_lease_ttl: int = Field(default=15, ge=3, le=300, validation_alias="LABLET_CONTROLLER_LEADER_LEASE_TTL")
    """Lease TTL of the leader election, in seconds (the leader renews every third of it)."""
