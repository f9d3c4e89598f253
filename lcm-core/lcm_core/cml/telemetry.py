"""The parsers' intermediate shapes: `system_stats` and `system_health` flattened, before `collect` merges them
into one `CmlTelemetrySnapshot` (the worker contract, `lcm_core.domain.workers`). Every field is optional:
`None` means "not reported or not understood", never zero."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.types import Flag, Integer, Number
from lcm_core.domain.workers import (
    COMPUTE_HEALTH_FLAGS,
    CmlComputeNode,
    CmlLicenseFeature,
    CmlLicenseInfo,
    CmlTelemetrySnapshot,
)

#: Controller health flags (`system_health.controller`).
CONTROLLER_HEALTH_FLAGS: tuple[str, ...] = ("core_connected", "nodes_loaded", "images_loaded", "valid")


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CmlSystemStats(_Snapshot):
    """`system_stats` flattened: cluster totals, controller disk, summed dominfo, computes."""

    all_cpu_count: Integer | None = None
    all_cpu_percent: Number | None = None
    all_memory_total: Integer | None = None
    all_memory_free: Integer | None = None
    all_memory_used: Integer | None = None
    all_disk_total: Integer | None = None
    all_disk_free: Integer | None = None
    all_disk_used: Integer | None = None
    controller_disk_total: Integer | None = None
    controller_disk_free: Integer | None = None
    controller_disk_used: Integer | None = None
    allocated_cpus: Integer | None = None
    allocated_memory: Integer | None = None
    total_nodes: Integer | None = None
    total_orphans: Integer | None = None
    running_nodes: Integer | None = None
    running_orphans: Integer | None = None
    computes: dict[str, CmlComputeNode] = Field(default_factory=dict)


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
