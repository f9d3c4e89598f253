"""The parsers' intermediate shape of `system_health`, before `collect` merges it with `system_stats` into one
`CmlTelemetrySnapshot` (`lcm_core.domain.cml_snapshot`). Every field is optional:
`None` means "not reported or not understood", never zero."""

from __future__ import annotations

from pydantic import Field

from lcm_core.domain.cml_snapshot import (
    COMPUTE_HEALTH_FLAGS,
    CmlComputeNode,
    CmlHealthSummary,
    CmlLicenseFeature,
    CmlLicenseInfo,
    CmlSystemStats,
    CmlTelemetrySnapshot,
)

#: Controller health flags (`system_health.controller`).
CONTROLLER_HEALTH_FLAGS: tuple[str, ...] = ("core_connected", "nodes_loaded", "images_loaded", "valid")


class CmlSystemHealth(CmlHealthSummary):
    """`system_health` flattened: the summary the snapshot keeps, and each compute's flags, which `collect`
    merges into the computes of `system_stats`."""

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
