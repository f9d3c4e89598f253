"""The field groups of the Worker aggregate, as plain pydantic models (no I/O)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.enums import LicenseStatus
from lcm_core.domain.types import Count, Flag, Instant, Integer, JsonObject, Label, Number

STATE_HISTORY_LIMIT = 50
ALERT_HISTORY_LIMIT = 50


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)


class StateChange(Model):
    """One entry of the bounded `state_history`."""

    field: str = "status"
    from_: str | None = Field(default=None, alias="from")
    to: str
    at: Instant
    reason: str | None = None
    by: str | None = None

    model_config = ConfigDict(populate_by_name=True, extra="forbid", allow_inf_nan=False)


class Ec2Telemetry(Model):
    state: str | None = None
    system_status: str | None = None
    instance_status: str | None = None
    checked_at: Instant | None = None


class CloudWatchTelemetry(Model):
    cpu_utilization: Number | None = None
    network_in_bytes: Number | None = None
    network_out_bytes: Number | None = None
    collected_at: Instant | None = None


class CmlSystemInfo(Model):
    """The 16 keys of `lcm_core.cml.SYSTEM_INFO_KEYS`; a key the worker did not report stays null."""

    all_cpu_count: Count | None = None
    all_cpu_percent: Number | None = None
    all_memory_total: Count | None = None
    all_memory_free: Count | None = None
    all_memory_used: Count | None = None
    all_disk_total: Count | None = None
    all_disk_free: Count | None = None
    all_disk_used: Count | None = None
    controller_disk_total: Count | None = None
    controller_disk_free: Count | None = None
    controller_disk_used: Count | None = None
    allocated_cpus: Count | None = None
    allocated_memory: Count | None = None
    total_nodes: Count | None = None
    running_nodes: Count | None = None
    computes: dict[Label, JsonObject] = Field(default_factory=dict, max_length=64)


class CmlSystemHealth(Model):
    valid: Flag | None = None
    is_licensed: Flag | None = None
    is_enterprise: Flag | None = None
    computes: dict[Label, JsonObject] = Field(default_factory=dict, max_length=64)
    controller: JsonObject = Field(default_factory=dict)


class CmlTelemetry(Model):
    system_info: CmlSystemInfo = Field(default_factory=CmlSystemInfo)
    system_health: CmlSystemHealth = Field(default_factory=CmlSystemHealth)
    labs_count: Integer | None = None
    uptime_seconds: Number | None = None
    collected_at: Instant | None = None


class StaleSource(Model):
    """A telemetry source whose last attempts failed: what the worker shows of it is the last value read."""

    since: Instant
    """When it failed first (it has failed every time since)."""
    error: str | None = None
    """Why it failed the last time."""


class Telemetry(Model):
    """Latest observed telemetry and the derived utilisation (CML-native preferred over CloudWatch)."""

    ec2: Ec2Telemetry = Field(default_factory=Ec2Telemetry)
    cloudwatch: CloudWatchTelemetry = Field(default_factory=CloudWatchTelemetry)
    cml: CmlTelemetry = Field(default_factory=CmlTelemetry)
    cpu_percent: Number | None = None
    memory_percent: Number | None = None
    disk_percent: Number | None = None
    cpu_source: str | None = None
    """`cml` or `cloudwatch`: where `cpu_percent` came from."""
    labs_count: Integer | None = None
    uptime_seconds: Number | None = None
    collected_at: Instant | None = None
    stale: dict[str, StaleSource] = Field(default_factory=dict)
    """Sources that failed, by name: `cml` while the CML API is unreachable, `cml.<endpoint>` for one endpoint
    that failed or answered nothing readable (see `worker_health.track_stale`)."""


class License(Model):
    status: LicenseStatus = LicenseStatus.UNREGISTERED
    registration_status: str | None = None
    authorization_status: str | None = None
    expires: Instant | None = None
    product: str | None = None
    is_enterprise: Flag | None = None
    node_limit: Integer | None = None
    """The most nodes CML runs with the licence as it stands (derived: `worker_rules.node_limit`); None while
    CML has not told its licensing, or a registered host does not say."""
    reported_node_limit: Integer | None = None
    """What CML's licensing reported (it reports a number only for a registered product)."""
    nodes_in_use: Integer | None = None
    pending_action: str | None = None
    """`register` or `deregister` while the controller works on a request."""
    restore_on_start: Flag = False
    """Deregistered because the worker was stopped: registered again once it runs with CML available."""
    last_error: str | None = None
    updated_at: Instant | None = None


class Activity(Model):
    last_activity_at: Instant | None = None
    idle_detection_enabled: Flag = True
    idle_since: Instant | None = None
    paused_at: Instant | None = None
    pause_reason: str | None = None
    resumed_at: Instant | None = None
    pause_count: Integer = 0
    resume_count: Integer = 0
    eligible_for_auto_pause: Flag = False
    idle_verdict: str | None = None
    """Why the last idle detection decided as it did (shown to operators)."""
    idle_checked_at: Instant | None = None


class Resources(Model):
    cpu_cores: Number = Field(default=0, ge=0, le=100_000)
    memory_gb: Number = Field(default=0, ge=0, le=1_000_000)
    storage_gb: Number = Field(default=0, ge=0, le=10_000_000)
    max_nodes: Integer = Field(default=0, ge=0, le=100_000)


class Reservation(Model):
    """What one lablet session holds on the worker (the ledger entry `allocated` is summed from)."""

    cpu_cores: Number = Field(default=0, ge=0)
    memory_gb: Number = Field(default=0, ge=0)
    storage_gb: Number = Field(default=0, ge=0)
    node_count: Integer = Field(default=0, ge=0)
    ports: dict[str, int] = Field(default_factory=dict)
    drifted_ports: dict[str, int] = Field(default_factory=dict)
    """Ports CML uses for the session beyond its allocation (drift): kept out of new allocations."""
    reserved_at: Instant | None = None
    session_version: Integer | None = None
    """The version of the pending session this reservation was made for (see `worker_capacity.reserve`)."""


class Capacity(Model):
    """`allocated` is always the sum of `reservations`; `port_allocations` and `session_ids` mirror them."""

    declared: Resources = Field(default_factory=Resources)
    allocated: Resources = Field(default_factory=Resources)
    port_allocations: dict[str, dict[str, int]] = Field(default_factory=dict)
    session_ids: list[str] = Field(default_factory=list)
    hosted_lab_ids: list[str] = Field(default_factory=list)
    reservations: dict[str, Reservation] = Field(default_factory=dict)


class Alert(Model):
    metric: str
    value: Number
    threshold: Number
    at: Instant
    cleared_at: Instant | None = None
    """When the metric went back to or below its threshold (None while the alert is active)."""


#: Declared capacity by instance type, for discovered workers (bare-metal CML hosts).
INSTANCE_CAPACITY: dict[str, Resources] = {
    "m5zn.metal": Resources(cpu_cores=48, memory_gb=192, storage_gb=500, max_nodes=200),
    "m5.metal": Resources(cpu_cores=96, memory_gb=384, storage_gb=500, max_nodes=200),
    "c5.metal": Resources(cpu_cores=96, memory_gb=192, storage_gb=500, max_nodes=200),
    "r5.metal": Resources(cpu_cores=96, memory_gb=768, storage_gb=500, max_nodes=200),
}
