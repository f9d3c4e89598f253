"""What the scheduler knows and judges about one worker and one session (docs/lablet-controller.md). No I/O.

- `Requirements` (a session's needs, and the pool of its track) and `WorkerCandidate` (a worker's state,
  licence, track, pool and capacity, read from the CPA's worker view by `candidate_from`);
- the **filters**, each a pure function returning the reason it rejects a worker, or None: its state
  (running, not draining, CML service available, health healthy or degraded: the rule the control plane
  applies again when it reserves, `lcm_core.domain.placement_rules`), licensed (CML labs need a registered
  worker unless the operator allows unlicensed ones; a session's `license_affinity` replaces that rule),
  track (a worker dedicated to a track only takes that track's sessions), capacity (CPU, memory, storage,
  nodes, and for a pool's worker the sessions its pool allows per worker) and ports;
- the **score** (0.0-1.1; it only ranks candidates): +0.4 utilisation of CPU, memory and storage all below 80 %,
  +0.2 fewer than 15 labs, +0.2 * (1 - mean utilisation), +0.1 licensed, +0.05 no lab yet ("READY" rather
  than "ACTIVE"), +0.05 track match, +0.1 CML-capable (every candidate that passed the filters is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lcm_core.domain.placement_rules import placement_refusal
from lcm_core.domain.workers import UNLICENSED_NODE_LIMIT, WorkerSummary

#: Utilisation below which a worker "has capacity" (CPU, memory and storage all below 80 %).
CAPACITY_THRESHOLD = 0.8
#: Labs below which a worker earns the "not crowded" bonus (fewer than 15 labs).
MAX_LABS_BONUS = 15



@dataclass(frozen=True, slots=True)
class Requirements:
    """What one session needs (from its definition) and where it may run."""

    cpu_cores: float = 0.0
    memory_gb: float = 0.0
    storage_gb: float = 0.0
    nodes: int = 0
    ports: int = 0
    lab_track: str | None = None
    license_affinity: frozenset[str] = frozenset()
    """Licences the session accepts, lowercase: a licence status (`registered`, `evaluation`), a product
    (`cml_enterprise`) or `enterprise`. Empty: the default rule (a registered worker)."""
    pool_id: str | None = None
    """The pool of the session's track (None: the track has none): its workers are tried first."""


@dataclass(slots=True)
class WorkerCandidate:
    """A worker as the scheduler sees it: state, licence, track, pool and capacity (mutable allocation)."""

    id: str
    status: str = "unknown"
    service_status: str = "unavailable"
    health_status: str = "unknown"
    name: str | None = None
    """The operator's name of the worker, used to say which workers were refused and why."""
    license_status: str = "unregistered"
    license_product: str | None = None
    is_enterprise: bool = False
    lab_track: str | None = None
    pool_id: str | None = None
    """The pool the worker was launched for (its `lab_track` is then the pool's track)."""
    labs_count: int = 0
    sessions: int = 0
    """Lablet sessions it holds (reservations), counted by `take()` as the pass places more."""
    max_sessions: int | None = None
    """The most sessions its pool lets one worker hold (`max_labs_per_worker`); None outside a pool."""
    cpu_cores: float = 0.0
    memory_gb: float = 0.0
    storage_gb: float = 0.0
    max_nodes: int = 0
    used_cpu: float = 0.0
    used_memory: float = 0.0
    used_storage: float = 0.0
    used_nodes: int = 0
    used_ports: int = 0
    port_capacity: int = 0
    cpu_percent: float | None = None
    """Measured CPU (None: not measured): how busy the worker is, which ranks a pool's workers for packing."""
    base_score: float = field(default=0.0, compare=False)

    @property
    def label(self) -> str:
        return self.name or self.id

    @property
    def licensed(self) -> bool:
        return self.license_status == "registered"

    def take(self, req: Requirements) -> None:
        """Count one more session of `req` on this worker (what a reservation uses up)."""
        self.used_cpu += req.cpu_cores
        self.used_memory += req.memory_gb
        self.used_storage += req.storage_gb
        self.used_nodes += req.nodes
        self.used_ports += req.ports
        self.labs_count += 1
        self.sessions += 1

    def license_matches(self, affinity: frozenset[str]) -> bool:
        """Whether one of the accepted licences is this worker's status, product or `enterprise`."""
        return (self.license_status in affinity or (self.license_product or "").lower() in affinity
                or (self.is_enterprise and "enterprise" in affinity))

    def utilisation(self) -> tuple[float, float, float]:
        return (_ratio(self.used_cpu, self.cpu_cores), _ratio(self.used_memory, self.memory_gb),
                _ratio(self.used_storage, self.storage_gb))

    def mean_utilisation(self) -> float:
        cpu, mem, disk = self.utilisation()
        return (cpu + mem + disk) / 3


def _ratio(used: float, total: float) -> float:
    return used / total if total > 0 else 1.0


def candidate_from(row: WorkerSummary, *, default_port_capacity: int) -> WorkerCandidate:
    """A worker's row (`GET /api/internal/workers`, `WorkerSummary`) as a candidate. A health never measured
    reads as unknown, which no session is placed on; labs not yet counted are the worker's sessions. Ports are
    counted against the port range both sides are configured with (`default_port_capacity`): the row carries
    no per-worker range."""
    declared, allocated = row.capacity.declared, row.capacity.allocated
    return WorkerCandidate(
        id=row.id, status=row.status.value, service_status=row.service_status.value,
        health_status=row.health_status, name=row.name or None, license_status=row.license_status.value,
        license_product=row.license_product, is_enterprise=row.is_enterprise is True, lab_track=row.lab_track,
        pool_id=row.pool_id, labs_count=row.labs_count if row.labs_count is not None else row.sessions,
        sessions=row.sessions,
        cpu_cores=declared.cpu_cores, memory_gb=declared.memory_gb, storage_gb=declared.storage_gb,
        max_nodes=declared.max_nodes, used_cpu=allocated.cpu_cores, used_memory=allocated.memory_gb,
        used_storage=allocated.storage_gb, used_nodes=allocated.max_nodes, used_ports=row.capacity.ports_used,
        port_capacity=default_port_capacity, cpu_percent=row.cpu_percent,
    )


# ---- filters --------------------------------------------------------------------------------------


def reject_state(worker: WorkerCandidate) -> str | None:
    """Running, not draining, CML available, health healthy or degraded (the control plane's rule too)."""
    return placement_refusal(status=worker.status, service_status=worker.service_status,
                             health_status=worker.health_status)


def reject_license(worker: WorkerCandidate, req: Requirements, *, require_license: bool) -> str | None:
    """CML labs need a registered worker; with `require_license=False` an unlicensed worker takes labs
    within CML's unlicensed node limit. A session's `license_affinity` overrides both rules."""
    if req.license_affinity:
        return None if worker.license_matches(req.license_affinity) else "licence not in affinity"
    if worker.licensed:
        return None
    if not require_license and req.nodes <= UNLICENSED_NODE_LIMIT:
        return None
    return "unlicensed"


def reject_track(worker: WorkerCandidate, req: Requirements) -> str | None:
    """A worker dedicated to a track only takes that track; a general worker (no track) takes any."""
    if worker.lab_track is None or worker.lab_track == req.lab_track:
        return None
    return "other track"


def reject_capacity(worker: WorkerCandidate, req: Requirements) -> str | None:
    # A pool sizes itself on sessions per worker: a worker past it would leave the pool's new workers idle.
    if worker.max_sessions is not None and worker.sessions >= worker.max_sessions:
        return f"holds its pool's {worker.max_sessions} sessions per worker"
    if worker.cpu_cores <= 0 or worker.memory_gb <= 0:
        return "no declared capacity"
    if worker.used_cpu + req.cpu_cores > worker.cpu_cores + 1e-9:
        return "insufficient cpu"
    if worker.used_memory + req.memory_gb > worker.memory_gb + 1e-9:
        return "insufficient memory"
    if worker.storage_gb > 0 and worker.used_storage + req.storage_gb > worker.storage_gb + 1e-9:
        return "insufficient storage"
    if worker.max_nodes > 0 and req.nodes and worker.used_nodes + req.nodes > worker.max_nodes:
        return "insufficient nodes"
    return None


def reject_ports(worker: WorkerCandidate, req: Requirements) -> str | None:
    return None if worker.used_ports + req.ports <= worker.port_capacity else "no free ports"


def rejection(worker: WorkerCandidate, req: Requirements, *, require_license: bool) -> str | None:
    """Every filter in order; the first reason that rejects the worker, or None if it is a candidate."""
    return (reject_state(worker)
            or reject_license(worker, req, require_license=require_license) or reject_track(worker, req)
            or reject_capacity(worker, req) or reject_ports(worker, req))


# ---- scoring --------------------------------------------------------------------------------------


def base_score(worker: WorkerCandidate) -> float:
    """The request-independent part of the score (everything but the track match)."""
    cpu, mem, disk = worker.utilisation()
    score = 0.1  # CML-capable: the candidate passed the CML service filter
    if cpu < CAPACITY_THRESHOLD and mem < CAPACITY_THRESHOLD and disk < CAPACITY_THRESHOLD:
        score += 0.4
    if worker.labs_count < MAX_LABS_BONUS:
        score += 0.2
    score += 0.2 * max(0.0, 1.0 - (cpu + mem + disk) / 3)
    if worker.licensed:
        score += 0.1
    if worker.labs_count == 0:
        score += 0.05
    return score


def score(worker: WorkerCandidate, req: Requirements) -> float:
    """The score of placing `req` on `worker` (higher is better)."""
    track = 0.05 if req.lab_track is not None and worker.lab_track == req.lab_track else 0.0
    return base_score(worker) + track
