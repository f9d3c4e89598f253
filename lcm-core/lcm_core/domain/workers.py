"""The worker contract shared by the control plane, both controllers and the dashboard (docs/architecture.md,
"One metrics report"). No I/O.

One metrics report has four shapes between CML and the browser, each declared once, here:

1. `CmlTelemetrySnapshot`: CML's answers parsed key by key (`lcm_core.cml.collect`), flat and typed;
2. `WorkerMetricsReport`: what the worker-controller sends: EC2 checks, CloudWatch, and the snapshot as it is;
3. `WorkerTelemetry`: what the control plane keeps of a worker's last reports, apart from the versioned
   worker document, with the values derived from them (`utilisation`, stale sources, health reasons, idle);
4. `WorkerSummary`: a worker's row (the worker list, the brief view, the payload of every worker event),
   with the same names in the browser.

Every derived value is computed once, by a function of this module: `utilisation`, `CmlComputeNode.healthy`,
`node_limit`, `worker_phase`, `merge_telemetry` (what a failed source keeps). `None` always means "not
reported or not understood", never zero. Models a receiver validates are strict (`extra="forbid"`) and bound
every size; views a controller reads ignore unknown fields, so that the control plane may add fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.types import Count, Flag, Instant, Integer, Label, Number, Text


class _Strict(BaseModel):
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

# --------------------------------------------------------------------------- 1. the CML snapshot

#: Health flags of one compute (`system_health.computes.<id>`), in CML's order.
COMPUTE_HEALTH_FLAGS: tuple[str, ...] = (
    "kvm_vmx_enabled", "enough_cpus", "lld_connected", "lld_synced", "libvirt", "fabric", "device_mux",
    "refplat_images_available", "docker_shim", "valid",
)


class CmlDomInfo(_Strict):
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


class CmlLicenseFeature(_Strict):
    """One entry of `licensing.features` (`in_use` is the *requested* count, `max` the allowed maximum)."""

    id: Label | None = None
    name: Label | None = None
    status: Label | None = None
    in_use: Integer | None = None
    min: Integer | None = None
    max: Integer | None = None


class CmlLicenseInfo(_Strict):
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


class CmlTelemetrySnapshot(CmlSystemStats):
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
    "system_stats": ("all_cpu_count", "all_cpu_percent", "all_memory_total", "all_memory_free", "all_memory_used",
                     "all_disk_total", "all_disk_free", "all_disk_used", "controller_disk_total",
                     "controller_disk_free", "controller_disk_used", "allocated_cpus", "allocated_memory",
                     "total_nodes", "total_orphans", "running_nodes", "running_orphans"),
    "system_health": ("health_valid", "is_licensed", "is_enterprise", "controller_core_connected",
                      "controller_nodes_loaded", "controller_images_loaded", "controller_valid"),
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


# --------------------------------------------------------------------------- 2. the report


class Ec2Checks(_Strict):
    """EC2's view of the instance: its state and its two status checks."""

    state: Label | None = Field(default=None, max_length=32)
    system_status: Label | None = Field(default=None, max_length=32)
    instance_status: Label | None = Field(default=None, max_length=32)


class CloudWatchSample(_Strict):
    """The latest CloudWatch datapoints of the instance (CPU in percent, network in bytes)."""

    cpu_utilization: Number | None = Field(default=None, ge=0, le=100)
    network_in_bytes: Number | None = Field(default=None, ge=0)
    network_out_bytes: Number | None = Field(default=None, ge=0)


class WorkerMetricsReport(_Strict):
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


class Utilisation(_Strict):
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


class StaleSource(_Strict):
    """A telemetry source whose last attempts failed: what the worker shows of it is the last value read."""

    since: Instant
    """When it failed first (it has failed every time since)."""
    error: Text | None = None
    """Why it failed the last time."""


class IdleState(_Strict):
    """What idle detection last concluded (shown to operators; the auto-pause itself is a desired status)."""

    idle_since: Instant | None = None
    eligible_for_auto_pause: Flag = False
    verdict: Text | None = None
    """Why it decided as it did, in words."""
    checked_at: Instant | None = None


class WorkerTelemetry(_Strict):
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


class Resources(_Strict):
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


class MetricsBatch(_Strict):
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
