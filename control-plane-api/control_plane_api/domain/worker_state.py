"""The field groups of the Worker aggregate, as plain pydantic models (no I/O). Its telemetry is not one of
them: it is stored apart (`lcm_core.domain.workers.WorkerTelemetry`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.enums import LicenseStatus
from lcm_core.domain.types import Flag, Instant, Integer, Number
from lcm_core.domain.workers import Resources

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
    pending_action: str | None = None
    """`register` or `deregister` while the controller works on a request."""
    restore_on_start: Flag = False
    """Deregistered because the worker was stopped: registered again once it runs with CML available."""
    register_when_available: Flag = False
    """Launched by a pool: registration is requested by itself the first time CML becomes available (once;
    an operator's deregistration afterwards stands)."""
    last_error: str | None = None
    updated_at: Instant | None = None


class Activity(Model):
    """The operator's side of idle auto-pause: the switch and the pauses made. What idle detection concluded
    lives with the telemetry (`WorkerTelemetry.idle`): it changes with every report."""

    idle_detection_enabled: Flag = True
    paused_at: Instant | None = None
    pause_reason: str | None = None
    resumed_at: Instant | None = None
    pause_count: Integer = 0
    resume_count: Integer = 0


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
