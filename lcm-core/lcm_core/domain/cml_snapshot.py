"""The first shape of a worker's metrics report: one CML host's telemetry, parsed key by key from CML's answers
(`lcm_core.cml.collect`), flat, typed and bounded, sent and stored as it is (`lcm_core.domain.workers` holds
the other shapes). No I/O.

`None` means "not reported or not understood", never zero. What a failed endpoint keeps of the last snapshot
is decided here, once (`merge_snapshot`), and so is a compute's health (`CmlComputeNode.healthy`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.types import Count, Flag, Instant, Integer, Label, Number, Text


class StrictModel(BaseModel):
    """What a receiver validates: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: At most this many computes per host are kept (a CML cluster has a handful).
MAX_COMPUTES = 64
#: At most this many licence features per host are kept (CML has a handful).
MAX_FEATURES = 64
#: At most this many lab ids per host are reported.
MAX_LAB_IDS = 10_000
#: At most this many parse warnings per snapshot travel (the rest are in the controller's log).
MAX_WARNINGS = 50

#: A CML endpoint's name, as the collection names it (`system_stats`, `system_health`, ...).
CmlSource = Annotated[str, Field(pattern=r"^[a-z][a-z_]{0,39}$")]
ShortText = Annotated[Text, Field(max_length=300)]

#: Health flags of one compute (`system_health.computes.<id>`), in CML's order.
COMPUTE_HEALTH_FLAGS: tuple[str, ...] = (
    "kvm_vmx_enabled", "enough_cpus", "lld_connected", "lld_synced", "libvirt", "fabric", "device_mux",
    "refplat_images_available", "docker_shim", "valid",
)


class CmlDomInfo(StrictModel):
    """The hypervisor's allocation numbers (`dominfo`), of one compute or summed over the cluster."""

    allocated_cpus: Integer | None = None
    allocated_memory: Integer | None = None
    total_nodes: Integer | None = None
    total_orphans: Integer | None = None
    running_nodes: Integer | None = None
    running_orphans: Integer | None = None


class CmlComputeNode(CmlDomInfo):
    """One compute of the cluster: its `system_stats` numbers merged with its `system_health` flags."""

    id: Label
    hostname: Label | None = None
    is_controller: Flag | None = None
    # system_stats.computes.<id>.stats.cpu
    cpu_count: Integer | None = None
    cpu_percent: Number | None = None
    cpu_model: Label | None = None
    cpu_predicted: Integer | None = None
    cpu_load: list[Number] | None = Field(default=None, max_length=16)
    # .memory / .disk (bytes)
    memory_total: Integer | None = None
    memory_free: Integer | None = None
    memory_used: Integer | None = None
    disk_total: Integer | None = None
    disk_free: Integer | None = None
    disk_used: Integer | None = None
    # system_health.computes.<id>
    admission_state: Label | None = None
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
        """The one rule for a compute's health: unhealthy when CML calls it invalid, its link to the controller
        (`lld_connected`) is down, or its admission state is known and not READY; None when CML told nothing.
        The other flags explain a failure; CML's `valid` already sums up the ones it requires."""
        known = [self.valid, self.lld_connected, self.admission_state]
        if all(value is None for value in known):
            return None
        return (self.valid is not False and self.lld_connected is not False
                and self.admission_state in (None, "READY"))

    @property
    def label(self) -> str:
        return self.hostname or self.id


#: The compute fields each endpoint fills (a failed endpoint keeps the last values of its own fields).
COMPUTE_HEALTH_FIELDS: frozenset[str] = frozenset({*COMPUTE_HEALTH_FLAGS, "admission_state"})


class CmlLicenseFeature(StrictModel):
    """One entry of `licensing.features` (`in_use` is the *requested* count, `max` the allowed maximum)."""

    id: Label | None = None
    name: Label | None = None
    status: Label | None = None
    in_use: Integer | None = None
    min: Integer | None = None
    max: Integer | None = None


class CmlLicenseInfo(StrictModel):
    """`licensing` flattened. `node_limit` = base nodes of the product + the node-count feature's `max`."""

    registration_status: Label | None = None
    authorization_status: Label | None = None
    registration_expires: Instant | None = None
    authorization_expires: Instant | None = None
    smart_account: Label | None = None
    virtual_account: Label | None = None
    product_license: Label | None = None
    is_enterprise: Flag | None = None
    reservation_mode: Flag | None = None
    udi_hostname: Label | None = None
    features: list[CmlLicenseFeature] | None = Field(default=None, max_length=MAX_FEATURES)
    base_nodes: Integer | None = None
    """Nodes included with `product_license` (see `lcm_core.cml.parsers.BASE_NODES_BY_PRODUCT`)."""
    expansion_nodes: Integer | None = None
    """Requested count (`in_use`) of the node-count feature ("Expansion Node License")."""
    expansion_nodes_max: Integer | None = None
    """The node-count feature's `max`: the most that *could* be requested, not what is licensed."""
    node_limit: Integer | None = None

    @property
    def registered(self) -> bool | None:
        return None if self.registration_status is None else self.registration_status == "COMPLETED"

    @property
    def expires(self) -> datetime | None:
        """When the licence lapses: the registration's expiry, else the authorization's."""
        return self.registration_expires or self.authorization_expires


class CmlSystemStats(CmlDomInfo):
    """`system_stats` flattened: cluster totals, the controller's disk, the summed `dominfo`, and the computes
    (which the snapshot's collection also gives each compute's `system_health` flags)."""

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
    computes: dict[Label, CmlComputeNode] = Field(default_factory=dict, max_length=MAX_COMPUTES)


class CmlHealthSummary(StrictModel):
    """`system_health` but its computes (whose flags the collection gives each compute of `system_stats`)."""

    health_valid: Flag | None = None
    is_licensed: Flag | None = None
    is_enterprise: Flag | None = None
    controller_core_connected: Flag | None = None
    controller_nodes_loaded: Flag | None = None
    controller_images_loaded: Flag | None = None
    controller_valid: Flag | None = None


class CmlTelemetrySnapshot(CmlSystemStats, CmlHealthSummary):
    """Everything a worker-controller learns about one CML host in one cycle, flat and typed; sent as it is.

    Field groups by endpoint (`SOURCE_FIELDS`): `system_information`, `system_stats` (cluster totals,
    controller disk, summed dominfo, and `computes`, which also carry each compute's `system_health` flags),
    `system_health`, `licensing`, `labs`, `telemetry_events`; then what went wrong: `errors` per endpoint that
    failed (its fields are None), `warnings` per key that was missing or malformed.
    """

    host: Label | None = None
    collected_at: Instant | None = None
    # system_information
    version: Label | None = None
    ready: Flag | None = None
    # licensing
    license: CmlLicenseInfo | None = None
    # labs and activity
    labs_count: Count | None = None
    lab_ids: list[Label] | None = Field(default=None, max_length=MAX_LAB_IDS)
    last_activity_at: Instant | None = None
    """The latest user activity in CML's telemetry events (only when the collection asked for them)."""
    # diagnostics
    errors: dict[CmlSource, ShortText] = Field(default_factory=dict, max_length=16)
    """Endpoint name -> why it failed or answered nothing readable (its fields are None)."""
    warnings: list[ShortText] = Field(default_factory=list, max_length=MAX_WARNINGS)
    """One line per key that was missing or malformed."""

    @property
    def compute_count(self) -> int:
        return len(self.computes)

    def unhealthy_computes(self) -> list[str]:
        """The computes CML reports unhealthy (`CmlComputeNode.healthy`), by host name."""
        return [node.label for node in self.computes.values() if node.healthy is False]


#: The snapshot fields each CML endpoint fills. A failed endpoint's fields keep their last values
#: (`merge_snapshot`); `computes` belong to both `system_stats` and `system_health`, field by field.
SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "system_information": ("version", "ready"),
    "system_stats": tuple(name for name in CmlSystemStats.model_fields if name != "computes"),
    "system_health": tuple(CmlHealthSummary.model_fields),
    "licensing": ("license",),
    "labs": ("labs_count", "lab_ids"),
    "telemetry_events": ("last_activity_at",),
}


def merge_snapshot(previous: CmlTelemetrySnapshot | None, new: CmlTelemetrySnapshot) -> CmlTelemetrySnapshot:
    """`new`, except that what a failed endpoint (`new.errors`) or one not asked this time (`version` and
    `ready` are only asked now and then, activity only on request) would blank keeps its last value."""
    if previous is None:
        return new
    update: dict[str, Any] = {}
    for source, fields in SOURCE_FIELDS.items():
        keep = source in new.errors or (source in ("system_information", "telemetry_events")
                                        and all(getattr(new, f) is None for f in fields))
        if keep:
            update.update((f, getattr(previous, f)) for f in fields)
    stats_failed, health_failed = "system_stats" in new.errors, "system_health" in new.errors
    if stats_failed or health_failed:
        computes: dict[str, CmlComputeNode] = {}
        for cid in dict.fromkeys([*new.computes, *previous.computes]):
            old, now = previous.computes.get(cid), new.computes.get(cid)
            data = now.model_dump() if now is not None else {"id": cid}
            if old is not None:
                for key, value in old.model_dump().items():
                    from_health = key in COMPUTE_HEALTH_FIELDS or key in ("hostname", "is_controller")
                    if (health_failed and from_health) or (stats_failed and not from_health):
                        data[key] = value if data.get(key) is None else data[key]
            computes[cid] = CmlComputeNode.model_validate(data)
        update["computes"] = computes
    return new.model_copy(update=update) if update else new
