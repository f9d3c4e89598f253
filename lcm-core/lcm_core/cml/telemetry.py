"""The flat, typed telemetry of one CML host, as a worker-controller reports it (docs/worker-controller.md).

Every field is optional: `None` means "not reported or not understood", never zero. The parsers in
`parsers` fill these models key by key, so one bad key costs one field. The `*_dict()` helpers render the
exact shapes the control plane stores (`cml.system_info` with its 16 keys, `cml.system_health`,
`license`), so the reporting code never re-derives a key name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.types import Flag, Instant, Integer, Number

#: The 16 keys of the worker's `cml.system_info`: exactly what the control plane stores and shows.
SYSTEM_INFO_KEYS: tuple[str, ...] = (
    "all_cpu_count", "all_cpu_percent",
    "all_memory_total", "all_memory_free", "all_memory_used",
    "all_disk_total", "all_disk_free", "all_disk_used",
    "controller_disk_total", "controller_disk_free", "controller_disk_used",
    "allocated_cpus", "allocated_memory", "total_nodes", "running_nodes",
    "computes",
)

#: Health flags of one compute (`system_health.computes.<id>`), in the order of CML's API schema.
COMPUTE_HEALTH_FLAGS: tuple[str, ...] = (
    "kvm_vmx_enabled", "enough_cpus", "lld_connected", "lld_synced", "libvirt", "fabric", "device_mux",
    "refplat_images_available", "docker_shim", "valid",
)

#: Controller health flags (`system_health.controller`).
CONTROLLER_HEALTH_FLAGS: tuple[str, ...] = ("core_connected", "nodes_loaded", "images_loaded", "valid")


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CmlComputeNode(_Snapshot):
    """One compute of the cluster: its `system_stats` numbers merged with its `system_health` flags."""

    id: str
    hostname: str | None = None
    is_controller: Flag | None = None
    # system_stats.computes.<id>.stats.cpu
    cpu_count: Integer | None = None
    cpu_percent: Number | None = None
    cpu_model: str | None = None
    cpu_predicted: Integer | None = None
    cpu_load: list[float] | None = None
    # .memory / .disk (bytes)
    memory_total: Integer | None = None
    memory_free: Integer | None = None
    memory_used: Integer | None = None
    disk_total: Integer | None = None
    disk_free: Integer | None = None
    disk_used: Integer | None = None
    # .dominfo
    allocated_cpus: Integer | None = None
    allocated_memory: Integer | None = None
    total_nodes: Integer | None = None
    total_orphans: Integer | None = None
    running_nodes: Integer | None = None
    running_orphans: Integer | None = None
    # system_health.computes.<id>
    admission_state: str | None = None
    kvm_vmx_enabled: Flag | None = None
    enough_cpus: Flag | None = None
    lld_connected: Flag | None = None
    lld_synced: Flag | None = None
    libvirt: Flag | None = None
    fabric: Flag | None = None
    device_mux: Flag | None = None
    refplat_images_available: Flag | None = None
    docker_shim: Flag | None = None
    valid: Flag | None = None

    @property
    def healthy(self) -> bool | None:
        """True when every health flag is true and the compute is READY; None when nothing is known."""
        flags = [getattr(self, name) for name in COMPUTE_HEALTH_FLAGS]
        if self.admission_state is None and all(flag is None for flag in flags):
            return None
        return self.admission_state == "READY" and all(flag is True for flag in flags)

    def stats_dict(self) -> dict[str, Any]:
        """The compute as `system_info.computes.<id>`: `{hostname, is_controller, stats{cpu,memory,disk,dominfo}}`."""
        return {
            "hostname": self.hostname,
            "is_controller": self.is_controller,
            "stats": {
                "cpu": {"count": self.cpu_count, "percent": self.cpu_percent, "model": self.cpu_model,
                        "predicted": self.cpu_predicted, "load": self.cpu_load},
                "memory": {"total": self.memory_total, "free": self.memory_free, "used": self.memory_used},
                "disk": {"total": self.disk_total, "free": self.disk_free, "used": self.disk_used},
                "dominfo": {"allocated_cpus": self.allocated_cpus, "allocated_memory": self.allocated_memory,
                            "total_nodes": self.total_nodes, "total_orphans": self.total_orphans,
                            "running_nodes": self.running_nodes, "running_orphans": self.running_orphans},
            },
        }

    def health_dict(self) -> dict[str, Any]:
        """The compute as `system_health.computes.<id>` (flags, admission state, identity)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in COMPUTE_HEALTH_FLAGS}
        out.update(admission_state=self.admission_state, is_controller=self.is_controller,
                   hostname=self.hostname)
        return out


class CmlLicenseFeature(_Snapshot):
    """One entry of `licensing.features` (`in_use` is the *requested* count, `max` the allowed maximum)."""

    id: str | None = None
    name: str | None = None
    status: str | None = None
    in_use: Integer | None = None
    min: Integer | None = None
    max: Integer | None = None


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


class CmlLicenseInfo(_Snapshot):
    """`licensing` flattened. `node_limit` = base nodes of the product + the node-count feature's `max`."""

    registration_status: str | None = None
    authorization_status: str | None = None
    registration_expires: Instant | None = None
    authorization_expires: Instant | None = None
    smart_account: str | None = None
    virtual_account: str | None = None
    product_license: str | None = None
    is_enterprise: Flag | None = None
    reservation_mode: Flag | None = None
    udi_hostname: str | None = None
    features: list[CmlLicenseFeature] | None = None
    base_nodes: Integer | None = None
    """Nodes included with `product_license` (see `parsers.BASE_NODES_BY_PRODUCT`)."""
    expansion_nodes: Integer | None = None
    """Requested count (`in_use`) of the node-count feature (`…CML_NODE_COUNT…`, "Expansion Node License")."""
    expansion_nodes_max: Integer | None = None
    """The node-count feature's `max`: the most that *could* be requested, not what is licensed."""
    node_limit: Integer | None = None

    @property
    def registered(self) -> bool | None:
        return None if self.registration_status is None else self.registration_status == "COMPLETED"

    @property
    def expires(self) -> datetime | None:
        """When the licence expires: `registration.expires`, else `authorization.expires`."""
        return self.registration_expires or self.authorization_expires


class CmlTelemetrySnapshot(CmlSystemStats):
    """Everything a worker-controller learns about one CML host in one cycle, flat and typed.

    Field groups: `system_information`, `system_stats` (inherited: the 16 `system_info` keys and more),
    `system_health`,
    `licensing`, labs, activity, derived percents, and what went wrong (`errors` per endpoint that failed,
    `warnings` per key that was missing or malformed).
    """

    host: str | None = None
    collected_at: Instant | None = None
    # system_information
    version: str | None = None
    ready: Flag | None = None
    # system_stats: the fields of CmlSystemStats; `computes` here also carries each compute's health.
    # system_health
    health_valid: Flag | None = None
    is_licensed: Flag | None = None
    is_enterprise: Flag | None = None
    controller_core_connected: Flag | None = None
    controller_nodes_loaded: Flag | None = None
    controller_images_loaded: Flag | None = None
    controller_valid: Flag | None = None
    # licensing
    license: CmlLicenseInfo | None = None
    # labs and activity
    labs_count: Integer | None = None
    lab_ids: list[str] | None = None
    last_activity_at: Instant | None = None
    # derived
    cpu_percent: Number | None = None
    memory_percent: Number | None = None
    disk_percent: Number | None = None
    # diagnostics
    errors: dict[str, str] = Field(default_factory=dict)
    """Endpoint name → why it failed (its fields are None)."""
    warnings: list[str] = Field(default_factory=list)
    """One line per key that was missing or malformed."""

    @property
    def compute_count(self) -> int:
        return len(self.computes)

    def system_info_dict(self) -> dict[str, Any]:
        """`cml.system_info`: exactly the 16 keys the control plane stores (`SYSTEM_INFO_KEYS`)."""
        out: dict[str, Any] = {key: getattr(self, key) for key in SYSTEM_INFO_KEYS if key != "computes"}
        out["computes"] = {cid: node.stats_dict() for cid, node in self.computes.items()}
        return out

    def system_health_dict(self) -> dict[str, Any]:
        """`cml.system_health`: `{valid, is_licensed, is_enterprise, computes, controller}`."""
        return {
            "valid": self.health_valid,
            "is_licensed": self.is_licensed,
            "is_enterprise": self.is_enterprise,
            "computes": {cid: node.health_dict() for cid, node in self.computes.items()},
            "controller": {
                "core_connected": self.controller_core_connected,
                "nodes_loaded": self.controller_nodes_loaded,
                "images_loaded": self.controller_images_loaded,
                "valid": self.controller_valid,
            },
        }

    def license_dict(self) -> dict[str, Any] | None:
        """The worker's `license` report; `nodes_in_use` is the running node count from `system_stats`."""
        if self.license is None:
            return None
        lic = self.license
        return {
            "registration_status": lic.registration_status,
            "authorization_status": lic.authorization_status,
            "expires": lic.expires,
            "product": lic.product_license,
            "is_enterprise": lic.is_enterprise if lic.is_enterprise is not None else self.is_enterprise,
            "node_limit": lic.node_limit,
            "nodes_in_use": self.running_nodes,
        }

    def report_dict(self) -> dict[str, Any]:
        """The `cml` part of a worker metrics report (the control plane's `CmlReport` fields).

        A section whose endpoint failed is None (not a dict of nulls), so the control plane can tell "could
        not ask" from "asked and got nothing"; `failed` names those endpoints with why (at most 16, each
        reason cut to 300 characters), so that it can mark what it keeps of them as stale.
        """
        return {
            "reachable": True,
            "error": "; ".join(f"{name}: {why}" for name, why in sorted(self.errors.items()))[:1000] or None,
            "failed": {name: why[:300] for name, why in sorted(self.errors.items())[:16]},
            "version": self.version,
            "ready": self.ready,
            "system_info": None if "system_stats" in self.errors else self.system_info_dict(),
            "system_health": None if "system_health" in self.errors else self.system_health_dict(),
            "license": self.license_dict(),
            "labs_count": self.labs_count,
            "lab_ids": self.lab_ids,
            "uptime_seconds": None,
            "last_activity_at": self.last_activity_at,
        }
