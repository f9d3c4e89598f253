"""The parsers' intermediate shape of `system_health`, before `collect` merges it with `system_stats` into one
`CmlTelemetrySnapshot` (the worker contract, `lcm_core.domain.workers`). Every field is optional:
`None` means "not reported or not understood", never zero."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.cml_snapshot import (
    COMPUTE_HEALTH_FLAGS,
    CmlComputeNode,
    CmlLicenseFeature,
    CmlLicenseInfo,
    CmlSystemStats,
    CmlTelemetrySnapshot,
)
from lcm_core.domain.types import Flag

#: Controller health flags (`system_health.controller`).
CONTROLLER_HEALTH_FLAGS: tuple[str, ...] = ("core_connected", "nodes_loaded", "images_loaded", "valid")


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CmlSystemHealth(_Snapshot):
    """`system_health` flattened; the per-compute flags are kept in `computes`."""

    valid: Flag | None = None
    is_licensed: Flag | None = None
    is_enterprise: Flag | None = None
    controller_core_connected: Flag | None = None
    controller_nodes_loaded: Flag | None = None
    controller_images_loaded: Flag | None = None
    controller_valid: Flag | None = None
    computes: dict[str, CmlComputeNode] = Field(default_factory=dict)



__all__ = [
    "COMPUTE_HEALTH_FLAGS",
    "CONTROLLER_HEALTH_FLAGS",
    "CmlComputeNode",
    "CmlLicenseFeature",
    "CmlLicenseInfo",
    "CmlSystemHealth",
    "CmlSystemStats",
    "CmlTelemetrySnapshot",
]
