"""The Worker aggregate (docs/architecture.md, 'Domain model'): one CML hypervisor on EC2.

Every behaviour mutates the aggregate in memory and returns the domain events it caused; persistence
(with the optimistic `version` check) and publication are the application layer's job. No I/O here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import FenceTokens
from control_plane_api.domain.lead_times import LeadClock, LeadKind, LeadTiming
from control_plane_api.domain.reports import (
    DiscoveredInstance,
    StatusReport,
)
from control_plane_api.domain.system_settings import WorkerTemplate
from control_plane_api.domain.worker_drain import Drain, WorkerDrain
from control_plane_api.domain.worker_launch import InstanceLaunch
from control_plane_api.domain.worker_membership import PoolMembership
from control_plane_api.domain.worker_rules import ORDINARY_SUCCESSORS
from control_plane_api.domain.worker_state import (
    INSTANCE_CAPACITY,
    STATE_HISTORY_LIMIT,
    Activity,
    Alert,
    Capacity,
    License,
    Model,
    StateChange,
)
from control_plane_api.domain.worker_telemetry import TelemetryBehaviour
from lcm_core.domain.enums import (
    DesiredStatus,
    HealthStatus,
    LicenseStatus,
    PauseReason,
    ServiceStatus,
    WorkerOrigin,
    WorkerStatus,
    status_from_ec2,
)
from lcm_core.domain.workers import (
    CapacitySummary,
    LaunchFailure,
    WorkerSummary,
    WorkerTelemetry,
    last_change,
    worker_phase,
)
from lcm_core.errors import ConflictError


class InstanceClaimedError(ConflictError):
    """An instance tagged for a worker that already runs on another instance: a duplicate launch."""

    def __init__(self, worker_id: str, instance_id: str, current: str) -> None:
        super().__init__(f"worker {worker_id} already runs on instance {current}; instance {instance_id} claims "
                         "it too", worker_id=worker_id, aws_instance_id=instance_id)
        self.worker_id, self.instance_id, self.current = worker_id, instance_id, current


def new_worker_id() -> str:
    return uuid.uuid4().hex


def worker_id_for(idempotency_key: str) -> str:
    """The id of the worker created under an idempotency key: the same key always names the same worker."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"lcm:worker:{idempotency_key}").hex


class Worker(WorkerDrain, PoolMembership, InstanceLaunch, LeadTiming, TelemetryBehaviour, Model):
    """The aggregate root. `id` is LCM's; `aws_instance_id` is unique across the fleet (None while a worker
    created from a template waits for its instance)."""

    id: str = Field(default_factory=new_worker_id)
    name: str
    aws_region: str
    aws_instance_id: str | None
    instance_type: str | None = None
    ami_id: str | None = None
    ami_name: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    aws_tags: dict[str, str] = Field(default_factory=dict)
    launch_time: datetime | None = None
    origin: WorkerOrigin = WorkerOrigin.DISCOVERED
    pool_id: str | None = None
    template_name: str | None = None
    lab_track: str | None = None
    """The lab track this worker serves; the scheduler prefers matching sessions."""
    park_when_ready: bool = False
    """Launched into its pool's warm pool: boots once without a licence, takes no session, and is stopped by the
    pool once its CML is available; resuming it for the pool makes it an ordinary member."""

    status: WorkerStatus = WorkerStatus.UNKNOWN
    drain: Drain | None = None
    """Set while the worker is drained (no new session); see `worker_drain`."""
    instance_conflict: str | None = None
    """Why an instance claims to be this worker's when it is not (a duplicate launch): shown to operators."""
    launch_failure: LaunchFailure | None = None
    """Its instance could not be launched (yet): see `worker_launch`."""
    desired_status: DesiredStatus | None = None
    desired_reason: str | None = None
    desired_changed_at: datetime | None = None
    status_changed_at: datetime | None = None
    """When `status` last changed: an EC2 state observed before it is stale (see `observe_ec2_state`)."""
    service_status: ServiceStatus = ServiceStatus.UNAVAILABLE
    cml_version: str | None = None
    license: License = Field(default_factory=License)
    ec2_state: str | None = None
    """The instance state EC2 last reported (`status` is LCM's reading of it)."""
    health_status: HealthStatus = HealthStatus.UNKNOWN
    """The health level (its reasons are the telemetry's: they change with every report)."""
    activity: Activity = Field(default_factory=Activity)
    capacity: Capacity = Field(default_factory=Capacity)
    active_alerts: list[str] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    refresh_requested_at: datetime | None = None
    lead_clock: LeadClock | None = None
    """Running from a launch or a resume until the worker first serves (its template's lead time)."""
    state_history: list[StateChange] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    version: int = 0
    fence: FenceTokens = Field(default_factory=dict)

    # ------------------------------------------------------------------ helpers

    def _event(self, type_: str, **data: Any) -> DomainEvent:
        return DomainEvent(type=type_, subject_id=self.id, data={"worker_id": self.id, **data})

    def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None,
                by: str | None) -> None:
        self.state_history.append(StateChange(field=field, from_=old, to=new, at=at, reason=reason, by=by))
        del self.state_history[:-STATE_HISTORY_LIMIT]

    def to_summary(self, telemetry: WorkerTelemetry | None = None) -> WorkerSummary:
        """The worker's row (`WorkerSummary`); its telemetry columns are set only when `telemetry` is given,
        so that a row sent without them (`exclude_unset`) leaves what the browser shows of them alone."""
        cap = self.capacity
        row = WorkerSummary(
            id=self.id, name=self.name, aws_region=self.aws_region, aws_instance_id=self.aws_instance_id,
            instance_type=self.instance_type, public_ip=self.public_ip, private_ip=self.private_ip,
            status=self.status, desired_status=self.desired_status, service_status=self.service_status,
            health_status=self.health_status.value, phase=self.lifecycle_phase,
            license_status=self.license.status, license_product=self.license.product,
            is_enterprise=self.license.is_enterprise, node_limit=self.license.node_limit,
            lab_track=self.lab_track, pool_id=self.pool_id, park_when_ready=self.park_when_ready,
            sessions=len(cap.reservations),
            capacity=CapacitySummary(declared=cap.declared, allocated=cap.allocated,
                                     ports_used=sum(len(p) for p in cap.port_allocations.values())),
            drain_then=self.drain.then if self.drain else None, instance_conflict=self.instance_conflict,
            launch_failure=self.launch_failure,
            getting_ready_by=self.lead_clock.kind.value if self.lead_clock else None,
            getting_ready_since=self.lead_clock.since if self.lead_clock else None,
            version=self.version)
        if telemetry is not None:
            u = telemetry.utilisation
            row.cpu_percent, row.memory_percent, row.disk_percent = u.cpu_percent, u.memory_percent, u.disk_percent
            row.cpu_source, row.labs_count, row.running_nodes = u.cpu_source, telemetry.labs_count, \
                telemetry.running_nodes
            row.collected_at, row.stale = telemetry.collected_at, sorted(telemetry.stale)
            row.idle_since = telemetry.idle.idle_since
        return row

    @property
    def lifecycle_phase(self) -> str:
        """The worker's phase (`lcm_core.domain.workers.worker_phase`)."""
        return worker_phase(self.status, self.service_status, self.license.status, len(self.capacity.reservations))

    # ------------------------------------------------------------------ discovery

    @classmethod
    def discovered(cls, found: DiscoveredInstance, now: datetime, by: str,
                   conflict: str | None = None) -> tuple[Worker, list[DomainEvent]]:
        status = status_from_ec2(found.state)
        worker = cls(
            name=found.name or found.tags.get("Name") or found.aws_instance_id,
            aws_region=found.aws_region, aws_instance_id=found.aws_instance_id,
            instance_type=found.instance_type, ami_id=found.ami_id, ami_name=found.ami_name,
            public_ip=found.public_ip, private_ip=found.private_ip, aws_tags=dict(found.tags),
            launch_time=found.launch_time, status=status, status_changed_at=now, created_at=now, updated_at=now,
            ec2_state=found.state,
        )
        declared = INSTANCE_CAPACITY.get(found.instance_type or "")
        if declared is not None:
            worker.capacity.declared = declared.model_copy()
        worker._record("status", None, status.value, now, "discovered in EC2", by)
        events = [worker._event(ev.WORKER_IMPORTED, name=worker.name, aws_region=worker.aws_region,
                                aws_instance_id=worker.aws_instance_id)]
        if conflict is not None:
            worker.instance_conflict = conflict
            events.append(worker._event(ev.WORKER_INSTANCE_CONFLICT, aws_instance_id=found.aws_instance_id,
                                        message=conflict))
        return worker, events

    @classmethod
    def requested(cls, template: WorkerTemplate, region: str, name: str, worker_id: str, now: datetime,
                  by: str, *, pool_id: str | None = None, lab_track: str | None = None,
                  register_license: bool = False, park_when_ready: bool = False) -> tuple[Worker, list[DomainEvent]]:
        """An operator (or a pool) asks for a new worker from a template; the worker-controller provisions it.
        A pool's worker belongs to it from the start, serves its track, and asks for its licence by itself once
        CML is first available (`register_license`), unless it is launched into the warm pool
        (`park_when_ready`)."""
        worker = cls(id=worker_id, name=name, aws_region=region, aws_instance_id=None,
                     instance_type=template.instance_type, origin=WorkerOrigin.CREATED, template_name=template.name,
                     pool_id=pool_id, lab_track=lab_track, park_when_ready=park_when_ready,
                     status=WorkerStatus.PENDING, status_changed_at=now, desired_status=DesiredStatus.RUNNING,
                     desired_changed_at=now,
                     desired_reason=f"created from template {template.name} by {by}", created_at=now,
                     updated_at=now)
        worker.capacity.declared = template.capacity.model_copy()
        worker.license.register_when_available = register_license and not park_when_ready
        worker.start_lead_clock(LeadKind.PROVISION, now)
        worker._record("status", None, WorkerStatus.PENDING.value, now, f"requested from template {template.name}",
                       by)
        return worker, [worker._event(ev.WORKER_CREATED, template_name=template.name, name=worker.name,
                                      aws_region=worker.aws_region, pool_id=pool_id, lab_track=lab_track)]

    def attach_instance(self, found: DiscoveredInstance, now: datetime, by: str) -> list[DomainEvent]:
        """The instance provisioned for this worker exists: adopt it (idempotent for the same instance)."""
        if self.aws_instance_id == found.aws_instance_id:
            return []
        if self.aws_instance_id is not None:
            raise InstanceClaimedError(self.id, found.aws_instance_id, self.aws_instance_id)
        self.aws_instance_id = found.aws_instance_id
        self.ami_id, self.ami_name = found.ami_id, found.ami_name
        self.instance_type = found.instance_type or self.instance_type
        self.launch_time = found.launch_time
        self._record("aws_instance_id", None, found.aws_instance_id, now, "instance provisioned", by)
        self.clear_launch_failure(now, by)
        events = [self._event(ev.WORKER_STATUS_UPDATED, old_status=self.status.value, new_status=self.status.value,
                              aws_instance_id=found.aws_instance_id, reason="instance provisioned",
                              phase=self.lifecycle_phase)]
        return events + self.refresh_from_discovery(found, now, by)

    def refresh_from_discovery(self, found: DiscoveredInstance, now: datetime, by: str) -> list[DomainEvent]:
        """Re-discovery is idempotent: it refreshes addresses and tags and syncs the EC2 state."""
        self.public_ip, self.private_ip = found.public_ip, found.private_ip
        self.aws_tags = dict(found.tags)
        self.name = found.name or found.tags.get("Name") or self.name
        if found.state is None:
            return []
        return self.observe_ec2_state(found.state, now, "seen by discovery", by, observed_at=found.observed_at)

    # ------------------------------------------------------------------ lifecycle

    def observe_ec2_state(self, ec2_state: str, now: datetime, reason: str | None, by: str,
                          observed_at: datetime | None = None) -> list[DomainEvent]:
        """EC2 is authoritative: apply what it reports; a transition that skips states is recorded as such.

        `observed_at` is when the reporter started looking (a metrics run, which reads EC2 at its start and
        reports up to a cycle later): a state seen before the last recorded change is older than what the
        worker already knows (the reconciler saw the instance stop meanwhile), and is ignored.
        """
        new = status_from_ec2(ec2_state)
        if new is WorkerStatus.RUNNING and self.drain is not None:
            new = WorkerStatus.DRAINING  # running, but taking no session until the drain ends
        old = self.status
        if (new is not old and observed_at is not None and self.status_changed_at is not None
                and observed_at < self.status_changed_at):
            return []
        self.ec2_state = ec2_state
        if new is old:
            return []
        skipped = new not in ORDINARY_SUCCESSORS[old]
        note = reason or f"EC2 reports {ec2_state}"
        if skipped:
            note = f"{note} (skipped from {old.value})"
        self.status, self.status_changed_at = new, now
        self._record("status", old.value, new.value, now, note, by)
        found: list[DomainEvent] = [self._event(ev.WORKER_STATUS_UPDATED, old_status=old.value,
                                                new_status=new.value, skipped=skipped, reason=note,
                                                phase=self.lifecycle_phase)]
        self.end_drain_when_down()
        if new not in (WorkerStatus.RUNNING, WorkerStatus.DRAINING):
            self.service_status = ServiceStatus.UNAVAILABLE
            if self.health_status is not HealthStatus.UNKNOWN:
                found += self._set_health(HealthStatus.UNKNOWN, [f"status is {new.value}"])
        if new is WorkerStatus.TERMINATED:
            found += self._forget_license(now, by)
            found.append(self._event(ev.WORKER_TERMINATED, aws_instance_id=self.aws_instance_id))
        return found

    def _forget_license(self, now: datetime, by: str) -> list[DomainEvent]:
        """A terminated instance holds no licence any more. If it was still registered (terminated outside
        LCM, or CML could not deregister), its licence stays counted in Smart Software Manager: say so."""
        lic = self.license
        if lic.status is LicenseStatus.UNREGISTERED and lic.pending_action is None:
            return []
        old = lic.status
        if old in (LicenseStatus.REGISTERED, LicenseStatus.REGISTERING, LicenseStatus.DEREGISTERING):
            lic.last_error = (f"instance terminated while its licence was {old.value}: release it in Smart "
                              "Software Manager if it is still counted there")
        lic.status, lic.pending_action, lic.updated_at = LicenseStatus.UNREGISTERED, None, now
        lic.node_limit = lic.reported_node_limit = None  # no instance, no nodes: no limit to show
        self._record("license", old.value, lic.status.value, now, "instance terminated", by)
        return [self._event(ev.WORKER_LICENSE_UPDATED, status=lic.status.value, pending_action=None,
                            error=lic.last_error, node_limit=None, phase=self.lifecycle_phase)]

    def apply_status_report(self, report: StatusReport, now: datetime, by: str) -> list[DomainEvent]:
        """What the controller saw in EC2 (and CML). A report observed before the worker's last status or
        desired-status change describes a world that has moved on since: it is ignored as a whole."""
        changed_at = last_change(self.status_changed_at, self.desired_changed_at)
        if report.observed_at is not None and changed_at is not None and report.observed_at < changed_at:
            return []
        if report.public_ip is not None:
            self.public_ip = report.public_ip
        if report.private_ip is not None:
            self.private_ip = report.private_ip
        if report.cml_version is not None:
            self.cml_version = report.cml_version
        found = self.observe_ec2_state(report.ec2_state, now, report.reason, by, observed_at=report.observed_at)
        if report.service_status is not None and self.status in (WorkerStatus.RUNNING, WorkerStatus.DRAINING):
            found += self._set_service_status(ServiceStatus(report.service_status), now, by)
        return found

    def _set_service_status(self, new: ServiceStatus, now: datetime, by: str) -> list[DomainEvent]:
        old = self.service_status
        if new is old:
            return []
        self.service_status = new
        self._record("service_status", old.value, new.value, now, None, by)
        found = [self._event(ev.WORKER_STATUS_UPDATED, old_status=self.status.value, new_status=self.status.value,
                             service_status=new.value, phase=self.lifecycle_phase)]
        lic = self.license
        wanted = lic.restore_on_start or lic.register_when_available
        if new is ServiceStatus.AVAILABLE and wanted and lic.pending_action is None:
            # Registered before LCM stopped it (it serves sessions licensed again, as before the pause), or
            # launched by a pool, whose workers serve sessions licensed: asked once, the first time CML is up.
            why = "registered before it was stopped" if lic.restore_on_start else "licensed when first available"
            lic.restore_on_start = lic.register_when_available = False
            if lic.status is not LicenseStatus.REGISTERED:
                found += self.request_license("register", now, f"{by} ({why})")
        return found

    def request_desired_status(self, desired: DesiredStatus, now: datetime, by: str,
                               reason: str | None = None, *, force: bool = False) -> list[DomainEvent]:
        """Record what the operator (or idle detection, or a finished drain) wants; the worker-controller
        drives EC2 toward it. Stopping or terminating a worker that holds sessions is refused (they must be
        drained or ended first) unless `force`: the caller has already asked for them to end."""
        if self.status is WorkerStatus.TERMINATED and desired is not DesiredStatus.TERMINATED:
            raise ConflictError(f"worker {self.id} is terminated; it cannot be {desired.value}")
        if self.desired_status is desired:
            return []
        if desired is not DesiredStatus.RUNNING and not force:
            self.refuse_if_sessions("stop" if desired is DesiredStatus.STOPPED else "terminate")
        old = self.desired_status
        self.desired_status, self.desired_reason, self.desired_changed_at = desired, reason, now
        self._record("desired_status", old.value if old else None, desired.value, now, reason, by)
        found = [self._event(ev.WORKER_DESIRED_STATUS_CHANGED, desired_status=desired.value, reason=reason, by=by)]
        if desired is DesiredStatus.STOPPED:
            self.activity.paused_at = now
            self.activity.pause_reason = (PauseReason.IDLE_TIMEOUT if reason == PauseReason.IDLE_TIMEOUT
                                          else PauseReason.MANUAL).value
            self.activity.pause_count += 1
            found.append(self._event(ev.WORKER_PAUSED, reason=self.activity.pause_reason, by=by))
        elif desired is DesiredStatus.RUNNING and old is DesiredStatus.STOPPED:
            self.activity.resumed_at = now
            self.activity.resume_count += 1
            found.append(self._event(ev.WORKER_RESUMED, by=by))
        if desired is DesiredStatus.RUNNING:
            self.resume_lead_clock(now)
        return found

    def set_idle_detection(self, enabled: bool, now: datetime, by: str) -> list[DomainEvent]:
        if self.activity.idle_detection_enabled is enabled:
            return []
        self.activity.idle_detection_enabled = enabled
        self._record("idle_detection_enabled", str(not enabled).lower(), str(enabled).lower(), now, None, by)
        return [self._event(ev.WORKER_IDLE_DETECTION_TOGGLED, enabled=enabled, by=by)]

    def set_lab_track(self, lab_track: str | None, now: datetime, by: str) -> list[DomainEvent]:
        """An operator's choice of the track the worker serves; a pool's member serves its pool's (409)."""
        if self.lab_track == lab_track:
            return []
        if self.pool_id is not None:
            raise ConflictError(f"worker {self.id} is a member of pool {self.pool_id} and serves its lab track "
                                f"({self.lab_track}); release it from the pool first", worker_id=self.id,
                                pool_id=self.pool_id)
        old, self.lab_track = self.lab_track, lab_track
        self._record("lab_track", old, lab_track or "", now, None, by)
        return [self._event(ev.WORKER_LAB_TRACK_CHANGED, lab_track=lab_track, previous=old, by=by)]

    def request_refresh(self, now: datetime, by: str) -> list[DomainEvent]:
        self.refresh_requested_at = now
        return [self._event(ev.WORKER_REFRESH_REQUESTED, by=by, requested_at=now.isoformat())]


__all__ = ["Worker", "new_worker_id", "worker_id_for"]
