"""The capacity ledger of a worker: lablet sessions reserve and release resources and ports. No I/O.

Every reservation is keyed by session id, so reserving twice returns the first allocation and releasing
twice gives nothing back twice; `allocated` is recomputed as the sum of the reservations after each change
(never incremented blindly). The application saves the worker under its `version`, which serialises
reservations on one worker across every CPA replica (docs/lablets.md, "Allocation design").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_state import Reservation, Resources
from lcm_core.domain.lablets import PortSpec, ResourceRequirements
from lcm_core.domain.placement_rules import placement_refusal
from lcm_core.errors import ConflictError

EPSILON = 1e-9


@dataclass(frozen=True)
class PortRange:
    start: int
    end: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end


def used_ports(worker: Worker, except_session: str | None = None) -> set[int]:
    """Every port a session holds on the worker, allocated or observed in use (drift)."""
    used: set[int] = set()
    for session_id, reservation in worker.capacity.reservations.items():
        if session_id != except_session:
            used.update(reservation.ports.values())
            used.update(reservation.drifted_ports.values())
    return used


def _pick_ports(worker: Worker, template: list[PortSpec], ports: PortRange) -> dict[str, int]:
    """One free port per template entry: its template port when free and in range, else the lowest free."""
    used = used_ports(worker)
    chosen: dict[str, int] = {}
    candidates = iter(range(ports.start, ports.end + 1))
    for spec in template:
        if spec.template_port in ports and spec.template_port not in used:
            port = spec.template_port
        else:
            free = next((p for p in candidates if p not in used), None)
            if free is None:
                raise ConflictError(f"worker {worker.id} has no free port left in {ports.start}..{ports.end} "
                                    f"(needed {len(template)})", worker_id=worker.id)
            port = free
        used.add(port)
        chosen[spec.name] = port
    return chosen


def _sum(reservations: dict[str, Reservation]) -> Resources:
    return Resources(
        cpu_cores=round(sum(r.cpu_cores for r in reservations.values()), 6),
        memory_gb=round(sum(r.memory_gb for r in reservations.values()), 6),
        storage_gb=round(sum(r.storage_gb for r in reservations.values()), 6),
        max_nodes=sum(r.node_count for r in reservations.values()),
    )


def _sync(worker: Worker) -> None:
    capacity = worker.capacity
    capacity.allocated = _sum(capacity.reservations)
    capacity.port_allocations = {sid: dict(r.ports) for sid, r in capacity.reservations.items()}
    capacity.session_ids = sorted(capacity.reservations)


def shortfall(worker: Worker, needs: ResourceRequirements) -> list[str]:
    """What the worker lacks to take `needs` on top of what it holds (empty: it fits)."""
    declared, allocated = worker.capacity.declared, worker.capacity.allocated
    missing: list[str] = []
    for name, want, free in (
        ("cpu_cores", needs.cpu_cores, declared.cpu_cores - allocated.cpu_cores),
        ("memory_gb", needs.memory_gb, declared.memory_gb - allocated.memory_gb),
        ("storage_gb", needs.storage_gb, declared.storage_gb - allocated.storage_gb),
    ):
        if want > free + EPSILON:
            missing.append(f"{name} needs {want:g}, {max(free, 0):g} free of {getattr(declared, name):g}")
    node_limit = declared.max_nodes
    if worker.license.node_limit is not None:
        node_limit = min(node_limit, worker.license.node_limit)
    if needs.node_count > node_limit - allocated.max_nodes:
        missing.append(f"nodes need {needs.node_count}, {max(node_limit - allocated.max_nodes, 0)} free of "
                       f"{node_limit}")
    return missing


def reserve(worker: Worker, session_id: str, needs: ResourceRequirements, template: list[PortSpec],
            ports: PortRange, now: datetime, session_version: int | None = None) -> tuple[dict[str, int],
                                                                                      list[DomainEvent]]:
    """Reserve `needs` and one port per template entry for the session.

    Idempotent for the same pending session version: a repeated (or concurrent) schedule call gets the same
    ports. A reservation made for an *older* version of the session is one being released after the session
    was unscheduled: reserving again must wait for that release (409), or the release would remove it.

    A new reservation needs a worker that may take sessions *as stored now* (running, not draining, CML
    available, healthy or degraded): the scheduler decided from an older read, and this check, made inside
    the worker's version-checked save, is what keeps a race from placing a session on a worker that has
    just become unreachable or started draining."""
    held = worker.capacity.reservations.get(session_id)
    if held is not None:
        if session_version is not None and held.session_version not in (None, session_version):
            raise ConflictError(f"worker {worker.id} still holds an earlier reservation of session {session_id} "
                                "that is being released; retry", worker_id=worker.id)
        return dict(held.ports), []
    refusal = placement_refusal(status=worker.status, service_status=worker.service_status,
                                health_status=worker.health_status)
    if refusal is None and worker.park_when_ready:
        refusal = "warming up for its pool's warm pool (stopped once CML is up)"
    if refusal is not None:
        raise ConflictError(f"worker {worker.id} cannot take sessions: {refusal} (status {worker.status.value}, "
                            f"CML {worker.service_status.value}, health {worker.health_status.value})",
                            worker_id=worker.id, reason=refusal)
    missing = shortfall(worker, needs)
    if missing:
        raise ConflictError(f"worker {worker.id} lacks capacity: {'; '.join(missing)}", worker_id=worker.id)
    chosen = _pick_ports(worker, template, ports)
    worker.capacity.reservations[session_id] = Reservation(
        cpu_cores=needs.cpu_cores, memory_gb=needs.memory_gb, storage_gb=needs.storage_gb,
        node_count=needs.node_count, ports=chosen, reserved_at=now, session_version=session_version)
    _sync(worker)
    return chosen, [_capacity_event(worker, session_id, "reserved")]


def release(worker: Worker, session_id: str) -> list[DomainEvent]:
    """Give back what the session holds (nothing if it holds nothing: releasing is idempotent)."""
    if worker.capacity.reservations.pop(session_id, None) is None:
        return []
    _sync(worker)
    return [_capacity_event(worker, session_id, "released")]


def record_drift(worker: Worker, session_id: str, drifted: dict[str, int]) -> list[DomainEvent]:
    """Ports CML uses for the session that LCM did not allocate: keep them out of new allocations."""
    held = worker.capacity.reservations.get(session_id)
    if held is None or held.drifted_ports == drifted:
        return []
    held.drifted_ports = dict(drifted)
    return [_capacity_event(worker, session_id, "port_drift")]


def _capacity_event(worker: Worker, session_id: str, change: str) -> DomainEvent:
    return DomainEvent(type=ev.WORKER_CAPACITY_UPDATED, subject_id=worker.id, data={
        "worker_id": worker.id, "session_id": session_id, "change": change,
        "allocated": worker.capacity.allocated.model_dump(), "declared": worker.capacity.declared.model_dump(),
        "sessions": len(worker.capacity.reservations)})
