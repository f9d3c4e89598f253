"""Settings of the lablet-controller (one typed object, injected)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator

from lcm_core.controller_settings import CmlAccessSettings, ControllerSettings
from lcm_core.domain.lablets import SchedulingStrategy


class LabletControllerSettings(ControllerSettings, CmlAccessSettings):
    """Everything the lablet-controller reads from its environment."""

    port: int = Field(default=8032, ge=1, le=65535, validation_alias="LABLET_CONTROLLER_PORT")
    """Port of the health/status HTTP server."""

    leader_lease_ttl: int = Field(default=15, ge=3, le=300, validation_alias="LABLET_CONTROLLER_LEADER_LEASE_TTL")
    """Lease TTL of the leader election, in seconds (the leader renews every third of it)."""

    scheduling_strategy: SchedulingStrategy = Field(
        default=SchedulingStrategy.BEST_FIT,
        validation_alias=AliasChoices("LABLET_SCHEDULING_STRATEGY", "SCHEDULER_STRATEGY"))
    """Placement strategy: best_fit, least_utilized, least_labs, round_robin or random (docs/lablet-controller.md)."""

    require_licensed_for_cml: bool = Field(default=True, validation_alias="REQUIRE_LICENSED_FOR_CML")
    """CML labs only go to registered workers. False: an unlicensed worker takes labs of at most
    5 nodes (CML's unlicensed limit). A definition's `license_affinity` overrides both."""

    scheduling_interval_seconds: float = Field(default=10, gt=0, validation_alias="LABLET_SCHEDULING_INTERVAL")
    """Seconds between scheduling passes over the pending sessions (a new session's etcd key wakes it too)."""

    schedule_ahead_seconds: float = Field(default=900, ge=0, validation_alias="LABLET_SCHEDULE_AHEAD")
    """A pending session is placed (capacity and ports reserved, lab built) once its timeslot starts within
    this many seconds; later sessions wait, so capacity is not held long before it is used."""

    reconcile_interval_seconds: float = Field(
        default=30, gt=0, validation_alias="LABLET_CONTROLLER_RECONCILE_INTERVAL")
    """Periodic resync of every active session (etcd watches and requeues trigger reconciles in between)."""

    discovery_interval_seconds: float = Field(default=300, gt=0, validation_alias="LABLET_DISCOVERY_INTERVAL")
    """Seconds between two sweeps for orphan session labs on the workers (labs titled `lablet-<id>` whose
    session no longer holds that worker are torn down; other labs are left alone)."""

    reconcile_concurrency: int = Field(default=20, ge=1, le=500, validation_alias="LABLET_RECONCILE_CONCURRENCY")
    """Sessions reconciled at once (one session is never reconciled twice at once)."""

    boot_timeout_seconds: float = Field(default=900, gt=0, validation_alias="LABLET_BOOT_TIMEOUT")
    """How long a lab may take until every node is BOOTED (15 min by default), then the session is failed."""

    boot_poll_seconds: float = Field(default=5, gt=0, validation_alias="LABLET_BOOT_POLL_INTERVAL")
    """Seconds between two looks at a booting lab's nodes."""

    max_attempts: int = Field(default=5, ge=1, le=100, validation_alias="LABLET_MAX_ATTEMPTS")
    """Failed attempts (backing off) before an instantiation is given up and the session marked with the
    error. Teardown is retried beyond it (logged as errors) until the lab is gone: never half torn down."""

    port_range_start: int = Field(default=5000, ge=1, le=65535, validation_alias="LABLET_PORT_RANGE_START")
    """First port the CPA allocates on a worker (same variable and default as the CPA's)."""

    port_range_end: int = Field(default=7999, ge=1, le=65535, validation_alias="LABLET_PORT_RANGE_END")
    """Last port the CPA allocates on a worker; the scheduler counts free ports against this range."""

    @property
    def ports_per_worker(self) -> int:
        return self.port_range_end - self.port_range_start + 1

    @model_validator(mode="after")
    def _ports_in_order(self) -> LabletControllerSettings:
        if self.port_range_end < self.port_range_start:
            raise ValueError("LABLET_PORT_RANGE_END must not be below LABLET_PORT_RANGE_START")
        return self
