"""The worker contract shared by the control plane, both controllers and the dashboard (docs/architecture.md,
"One metrics report"). No I/O.

One metrics report has four shapes between CML and the browser, each declared once, here:

1. `CmlTelemetrySnapshot`: CML's answers parsed key by key (`lcm_core.cml.collect`), flat and typed;
2. `WorkerMetricsReport`: what the worker-controller sends: EC2 checks, CloudWatch, and the snapshot as it is;
3. `WorkerTelemetry`: what the control plane keeps of a worker's last reports, apart from the versioned
   worker document, with the values derived from them (`utilisation`, stale sources, health reasons, idle);
4. `WorkerSummary`: a worker's row (the worker list, the brief view, the payload of every worker event),
   with the same names in the browser.

Every derived value is computed once: `utilisation`, `node_limit`, `worker_phase` here, a compute's health and
what a failed endpoint keeps in `lcm_core.domain.cml_snapshot`. `None` always means "not reported or not
understood", never zero. Models a receiver validates are strict (`extra="forbid"`) and bound every size; views
a controller reads ignore unknown fields, so that the control plane may add fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.cml_snapshot import CmlTelemetrySnapshot, StrictModel
from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.types import Flag, Instant, Integer, Label, Number, Text
from lcm_core.domain.worker_launch import LaunchFailure

# --------------------------------------------------------------------------- 2. the report


class Ec2Checks(StrictModel):
    """EC2's view of the instance: its state and its two status checks."""

    state: Label | None = Field(default=None, max_length=32)
    system_status: Label | None = Field(default=None, max_length=32)
    instance_status: Label | None = Field(default=None, max_length=32)


class CloudWatchSample(StrictModel):
    """The latest CloudWatch datapoints of the instance (CPU in percent, network in bytes)."""

    cpu_utilization: Number | None = Field(default=None, ge=0, le=100)
    network_in_bytes: Number | None = Field(default=None, ge=0)
    network_out_bytes: Number | None = Field(default=None, ge=0)


class WorkerMetricsReport(StrictModel):
    """One worker's metrics cycle, as the worker-controller reports it; a source that gave nothing is absent.

    `cml` is the snapshot as collected; `cml_unreachable` says why there is none when the host's CML API did
    not answer at all (then the worker is unreachable, and what the control plane had is kept, stale)."""

    worker_id: Annotated[Label, Field(min_length=1, max_length=64)]
    collected_at: Instant
    """When the cycle started reading (an EC2 state seen before the worker's last change is not applied)."""
    ec2: Ec2Checks | None = None
    cloudwatch: CloudWatchSample | None = None
    cml: CmlTelemetrySnapshot | None = None
    cml_unreachable: Annotated[Text, Field(max_length=1000)] | None = None


# --------------------------------------------------------------------------- derived values


class Utilisation(StrictModel):
    """The worker's utilisation in percent (0-100, one decimal): CML's view of the hypervisor, CloudWatch's
    CPU when CML gave none (`cpu_source`)."""

    cpu_percent: Number | None = None
    memory_percent: Number | None = None
    disk_percent: Number | None = None
    cpu_source: Label | None = None


def _used(used: int | None, free: int | None, total: int | None) -> int | None:
    """What is used, from `used` or else from `total - free`."""
    if used is not None:
        return used
    return total - free if total is not None and free is not None else None


#: A percentage a little above 100 is rounding on the host; beyond this it is nonsense, and left out.
_PERCENT_SLACK = 0.5


def _in_range(value: float | None) -> float | None:
    """A percentage (0-100, one decimal), or None when it is clearly out of range (a host's nonsense)."""
    if value is None or value < 0 or value > 100 + _PERCENT_SLACK:
        return None
    return round(min(value, 100.0), 1)


def _share(used: int | None, total: int | None) -> float | None:
    return None if used is None or total is None or total <= 0 else _in_range(100.0 * used / total)


def utilisation(cml: CmlTelemetrySnapshot | None, cloudwatch: CloudWatchSample | None) -> Utilisation:
    """The one derivation of a worker's utilisation (see `Utilisation`)."""
    cpu = _in_range(cml.all_cpu_percent) if cml is not None else None
    source: str | None = "cml"
    if cpu is None:
        cpu, source = (_in_range(cloudwatch.cpu_utilization) if cloudwatch is not None else None), "cloudwatch"
    if cpu is None:
        source = None
    if cml is None:
        return Utilisation(cpu_percent=cpu, cpu_source=source)
    return Utilisation(
        cpu_percent=cpu, cpu_source=source,
        memory_percent=_share(_used(cml.all_memory_used, cml.all_memory_free, cml.all_memory_total),
                              cml.all_memory_total),
        disk_percent=_share(_used(cml.all_disk_used, cml.all_disk_free, cml.all_disk_total), cml.all_disk_total),
    )


#: CML runs at most this many nodes without a registered licence (unregistered, evaluation, lapsed).
UNLICENSED_NODE_LIMIT = 5


def node_limit(status: LicenseStatus, reported: int | None, known: bool) -> int | None:
    """The most nodes CML runs on a worker, with its licence as it stands.

    Registered: what CML's licensing reports (None if it does not say, e.g. an unknown product). Any other
    status: CML's number if it gives one (a host being deregistered is still licensed), else the unlicensed
    limit. `known` is False while CML has never told its licensing: then nothing is claimed (None)."""
    if status is LicenseStatus.REGISTERED or not known:
        return reported
    return reported if reported is not None else UNLICENSED_NODE_LIMIT


def worker_phase(status: WorkerStatus, service_status: ServiceStatus, license_status: LicenseStatus,
                 sessions: int) -> str:
    """The worker's lifecycle phase, one word for operators: a view over status, CML service and licence.
    A running, licensed worker is ACTIVE while it holds lablet sessions and READY otherwise."""
    s, lic = status, license_status
    if s in (WorkerStatus.PENDING, WorkerStatus.PROVISIONING):
        return "PROVISIONING_EC2"
    if s is WorkerStatus.STARTING or (s is WorkerStatus.RUNNING and service_status is not ServiceStatus.AVAILABLE):
        return "STARTING"
    if s in (WorkerStatus.RUNNING, WorkerStatus.DRAINING) and lic is LicenseStatus.DEREGISTERING:
        return "UNLICENSING"
    if s is WorkerStatus.RUNNING:
        if lic is LicenseStatus.REGISTERING:
            return "LICENSING"
        if lic is LicenseStatus.REGISTERED:
            return "ACTIVE" if sessions > 0 else "READY"
        return "READY_UNLICENSED"
    return {
        WorkerStatus.DRAINING: "DRAINING", WorkerStatus.STOPPING: "STOPPING",
        WorkerStatus.STOPPED: "STOPPED", WorkerStatus.TERMINATING: "TERMINATING_EC2",
        WorkerStatus.TERMINATED: "TERMINATED", WorkerStatus.FAILED: "FAILED",
    }.get(s, "UNKNOWN")


def last_change(status_changed_at: datetime | None, desired_changed_at: datetime | None) -> datetime | None:
    """The latest of a worker's last status change and last desired-status change: an observation made
    before it describes a world that has moved on, and is neither applied nor decided from."""
    known = [t for t in (status_changed_at, desired_changed_at) if t is not None]
    return max(known) if known else None


# --------------------------------------------------------------------------- 3. stored telemetry


class StaleSource(StrictModel):
    """A telemetry source whose last attempts failed: what the worker shows of it is the last value read."""

    since: Instant
    """When it failed first (it has failed every time since)."""
    error: Text | None = None
    """Why it failed the last time."""


class IdleState(StrictModel):
    """What idle detection last concluded (shown to operators; the auto-pause itself is a desired status)."""

    idle_since: Instant | None = None
    eligible_for_auto_pause: Flag = False
    verdict: Text | None = None
    """Why it decided as it did, in words."""
    checked_at: Instant | None = None


class WorkerTelemetry(StrictModel):
    """A worker's latest telemetry, stored apart from the worker document and served as it is.

    Written every cycle without touching the versioned worker (so that capacity reservations never race a
    metrics write); the worker itself changes only when what it decides from changes (health level, CML
    service, licence, EC2 state, an alert, an auto-pause). It has a version of its own: two reports of one
    worker applied at once (a refresh during the fleet's cycle) both land, the later one re-applied."""

    worker_id: Label
    version: int = 0
    """The stored version (0: never stored)."""
    collected_at: Instant | None = None
    """The newest collection applied (each source keeps its own time: `ec2_checked_at`, `cloudwatch_at`,
    `cml_at`)."""
    ec2: Ec2Checks | None = None
    ec2_checked_at: Instant | None = None
    cloudwatch: CloudWatchSample | None = None
    cloudwatch_at: Instant | None = None
    cml: CmlTelemetrySnapshot | None = None
    """The last snapshot, failed endpoints keeping their last values (`merge_snapshot`)."""
    cml_at: Instant | None = None
    """When the snapshot (`cml`) was collected."""
    cml_checked_at: Instant | None = None
    """When CML was last asked, whether it answered or not."""
    utilisation: Utilisation = Field(default_factory=Utilisation)
    stale: dict[Label, StaleSource] = Field(default_factory=dict)
    """Sources that failed, by name: `cml` while the CML API is unreachable, `cml.<endpoint>` for one endpoint
    that failed or answered nothing readable."""
    health_reasons: list[Text] = Field(default_factory=list)
    """Why the worker's health level is what it is (the level itself is the worker's)."""
    last_seen_at: Instant | None = None
    """The last time the worker's own CML API answered (EC2 reporting it running is no sign of life)."""
    last_activity_at: Instant | None = None
    """The last time nodes were seen running (or CML reported user activity)."""
    idle: IdleState = Field(default_factory=IdleState)

    @property
    def labs_count(self) -> int | None:
        return self.cml.labs_count if self.cml is not None else None

    @property
    def running_nodes(self) -> int | None:
        return self.cml.running_nodes if self.cml is not None else None


# --------------------------------------------------------------------------- 4. the row


class Resources(StrictModel):
    cpu_cores: Number = Field(default=0, ge=0, le=100_000)
    memory_gb: Number = Field(default=0, ge=0, le=1_000_000)
    storage_gb: Number = Field(default=0, ge=0, le=10_000_000)
    max_nodes: Integer = Field(default=0, ge=0, le=100_000)


class CapacitySummary(BaseModel):
    """What the worker declares, what its sessions hold, and how many ports they use."""

    model_config = ConfigDict(extra="ignore")

    declared: Resources = Field(default_factory=Resources)
    allocated: Resources = Field(default_factory=Resources)
    ports_used: int = 0


class WorkerSummary(BaseModel):
    """A worker's row: the worker list and its brief view, the scheduler's candidates, and the `summary` of
    every worker event (the browser replaces its row with it). Ignores unknown fields when read."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = ""
    aws_region: str = ""
    aws_instance_id: str | None = None
    instance_type: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    status: WorkerStatus = WorkerStatus.UNKNOWN
    desired_status: DesiredStatus | None = None
    service_status: ServiceStatus = ServiceStatus.UNAVAILABLE
    health_status: str = "unknown"
    phase: str = "UNKNOWN"
    license_status: LicenseStatus = LicenseStatus.UNREGISTERED
    license_product: str | None = None
    is_enterprise: bool | None = None
    node_limit: int | None = None
    lab_track: str | None = None
    pool_id: str | None = None
    park_when_ready: bool = False
    """Launched into its pool's warm pool: it boots once (image copy, first CML boot), takes no licence and no
    session, and is stopped as soon as its CML is available, to be resumed later."""
    getting_ready_by: str | None = None
    """"provision" or "resume" while a launch or a resume is under way (until the worker first serves)."""
    getting_ready_since: datetime | None = None
    """When that launch or resume was asked for: with the template's lead time, when it should serve."""
    sessions: int = 0
    capacity: CapacitySummary = Field(default_factory=CapacitySummary)
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    cpu_source: str | None = None
    labs_count: int | None = None
    running_nodes: int | None = None
    collected_at: datetime | None = None
    stale: list[str] = Field(default_factory=list)
    idle_since: datetime | None = None
    drain_then: DesiredStatus | None = None
    instance_conflict: str | None = None
    launch_failure: LaunchFailure | None = None
    """Set while the worker's instance cannot be launched (cleared once it is)."""
    version: int = 0

    def cml_url(self, template: str) -> str | None:
        return cml_url(template, self.aws_instance_id, self.private_ip, self.public_ip)


# --------------------------------------------------------------------------- the controller's view


class LicenseView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: LicenseStatus = LicenseStatus.UNREGISTERED
    pending_action: str | None = None


class WorkerView(BaseModel):
    """The worker as the worker-controller decides from it: identity, addresses, observed and desired state,
    licence progress and the version, without telemetry or history (what discovery's imports return)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = ""
    aws_region: str
    aws_instance_id: str | None = None
    template_name: str | None = None
    status: WorkerStatus = WorkerStatus.UNKNOWN
    status_changed_at: datetime | None = None
    desired_status: DesiredStatus | None = None
    desired_changed_at: datetime | None = None
    service_status: ServiceStatus = ServiceStatus.UNAVAILABLE
    cml_version: str | None = None
    health_status: str = "unknown"
    private_ip: str | None = None
    public_ip: str | None = None
    license: LicenseView = Field(default_factory=LicenseView)
    refresh_requested_at: datetime | None = None
    sessions: int = 0
    """Lablet sessions holding capacity on the worker (their labs run, or will run, on it)."""
    version: int = 0

    def last_change(self) -> datetime | None:
        return last_change(self.status_changed_at, self.desired_changed_at)

    def cml_url(self, template: str) -> str | None:
        return cml_url(template, self.aws_instance_id, self.private_ip, self.public_ip)


def cml_url(template: str, instance_id: str | None, private_ip: str | None, public_ip: str | None) -> str | None:
    """A worker's CML base URL from `CML_WORKER_URL_TEMPLATE` (`{ip_address}`, `{instance_id}`); None while it
    has no instance, or no address when the template needs one."""
    address = private_ip or public_ip
    if instance_id is None or ("{ip_address}" in template and not address):
        return None
    return template.format(ip_address=address or "", instance_id=instance_id).rstrip("/")


# --------------------------------------------------------------------------- the metrics batch

#: Reports per `metrics:batch` call the control plane accepts.
MAX_METRICS_BATCH = 5000


class MetricsBatch(StrictModel):
    """Many workers' reports in one call (`POST /api/internal/workers/metrics:batch`)."""

    reports: list[WorkerMetricsReport] = Field(max_length=MAX_METRICS_BATCH)


class MetricsBatchOutcome(BaseModel):
    """What the control plane did with a batch."""

    updated: list[str] = Field(default_factory=list)
    """Workers whose telemetry was stored."""
    not_found: list[str] = Field(default_factory=list)
    retried: int = 0
    """Worker writes that lost a race and were applied again (normally none: telemetry is stored apart)."""
    auto_paused: list[str] = Field(default_factory=list)
    """Workers found idle past the threshold, asked to stop."""

    def add(self, other: MetricsBatchOutcome) -> None:
        self.updated += other.updated
        self.not_found += other.not_found
        self.retried += other.retried
        self.auto_paused += other.auto_paused
