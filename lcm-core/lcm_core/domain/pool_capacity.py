"""A worker pool's capacity, read from its workers' rows (docs/pools.md). No I/O.

Which workers count toward a pool's size (`member_role`), which of them serve (`serving`), the sessions waiting
for the pool (`WaitingDemand`) and the capacity summary the control plane stores, the autoscaler decides on and
the dashboard shows (`pool_capacity`), and the order in which the autoscaler retires workers and the scheduler
packs sessions (`retirement_order`): computed once, here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from lcm_core.domain.cml_snapshot import StrictModel
from lcm_core.domain.enums import DesiredStatus, HealthStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.placement_rules import placement_refusal
from lcm_core.domain.types import Count, Number
from lcm_core.domain.workers import WorkerSummary


class MemberRole(StrEnum):
    """What a pool's worker is to the pool's size."""

    ACTIVE = "active"
    """Counted toward the size: wanted running (launching, starting, licensing or serving)."""
    PARKED = "parked"
    """Stopped by a scale-down (EBS only): resumed first when the pool grows again."""
    WARMING = "warming"
    """Launched into the warm pool (`WorkerSummary.park_when_ready`): booting once, to be stopped when ready."""
    LEAVING = "leaving"
    """Drained or stopping/terminating on the pool's (or an operator's) request: no longer counted."""
    FAILED = "failed"
    GONE = "gone"
    """Terminated (or asked to be)."""


def member_role(row: WorkerSummary) -> MemberRole:
    if row.status is WorkerStatus.TERMINATED or row.desired_status is DesiredStatus.TERMINATED:
        return MemberRole.GONE
    if row.status is WorkerStatus.FAILED:
        return MemberRole.FAILED
    if row.drain_then in (DesiredStatus.STOPPED, DesiredStatus.TERMINATED):
        return MemberRole.LEAVING
    if row.park_when_ready and row.desired_status is not DesiredStatus.STOPPED:
        return MemberRole.WARMING
    if row.desired_status is DesiredStatus.STOPPED:
        return MemberRole.PARKED if row.status is WorkerStatus.STOPPED else MemberRole.LEAVING
    if row.status in (WorkerStatus.STOPPED, WorkerStatus.STOPPING) and row.desired_status is None:
        return MemberRole.PARKED
    return MemberRole.ACTIVE


def serving(row: WorkerSummary) -> bool:
    """Ready to take sessions: licensed (READY or ACTIVE) and in a state the scheduler places sessions in
    (`placement_refusal`: running, not draining, CML available, healthy or degraded). A worker not measured
    yet is still on its way: sessions wait for it rather than leave the pool for other workers."""
    return row.phase in ("READY", "ACTIVE") and placement_refusal(
        status=row.status.value, service_status=row.service_status.value, health_status=row.health_status) is None


def on_its_way(row: WorkerSummary) -> bool:
    """A member that does not serve yet but is getting there: launching, starting, CML booting, licensing, or
    licensed and running but not measured yet. Sessions may wait for it. Any other member that does not
    serve (CML failed to boot, unlicensed with no registration under way, unhealthy, drained) is stuck: it
    will not serve by itself, so nothing waits for it and the pool does not count on it."""
    if serving(row):
        return False
    if row.status in (WorkerStatus.PENDING, WorkerStatus.PROVISIONING, WorkerStatus.STARTING):
        return True
    if row.status in (WorkerStatus.STOPPED, WorkerStatus.STOPPING) and row.desired_status is DesiredStatus.RUNNING:
        return True  # resumed: EC2 has not started it yet
    if row.status is not WorkerStatus.RUNNING:
        return False
    if row.service_status in (ServiceStatus.UNAVAILABLE, ServiceStatus.STARTING) or row.phase == "LICENSING":
        return True
    return row.phase in ("READY", "ACTIVE") and row.health_status == HealthStatus.UNKNOWN


class WaitingDemand(StrictModel):
    """Pending sessions of the pool's track that no worker could take: they wait for the pool to grow."""

    sessions: Count = 0
    cpu_cores: Number = Field(default=0, ge=0)
    memory_gb: Number = Field(default=0, ge=0)
    too_large: Count = 0
    """Sessions waiting for the pool that need more CPU or memory than an empty worker of its template has:
    not in the figures above, since no worker the pool launches would hold them."""


class PoolCapacity(StrictModel):
    """A pool's capacity as its workers' rows say it (`pool_capacity`)."""

    workers: Count = 0
    """Members counted toward the size (`MemberRole.ACTIVE`)."""
    ready: Count = 0
    """Of them, serving: running, CML available, licensed, healthy or degraded (`serving`)."""
    on_the_way: Count = 0
    """Of them, getting there (`on_its_way`): launching, booting, licensing, not measured yet."""
    stuck: Count = 0
    """Of them, neither serving nor on their way (CML failed, unlicensed, unhealthy): not counted on."""
    empty_ready: Count = 0
    """Ready members that hold no session: room a waiting session will be placed in at the next pass."""
    parked: Count = 0
    warming: Count = 0
    """Launched into the warm pool, booting once before they are stopped."""
    leaving: Count = 0
    failed: Count = 0
    by_phase: dict[Annotated[str, Field(max_length=32)], Count] = Field(default_factory=dict, max_length=32)
    """Members that are not gone, by worker phase (PROVISIONING_EC2, READY, ACTIVE, DRAINING, ...)."""
    total_cpu_cores: Number = 0
    available_cpu_cores: Number = 0
    total_memory_gb: Number = 0
    available_memory_gb: Number = 0
    total_storage_gb: Number = 0
    available_storage_gb: Number = 0
    total_nodes: Count = 0
    available_nodes: Count = 0
    avg_cpu_percent: Number | None = None
    """Average measured CPU of the ready workers (None while none was measured)."""
    avg_memory_percent: Number | None = None
    sessions: Count = 0
    """Sessions held on the pool's workers."""
    waiting_sessions: Count = 0
    """Sessions of the track waiting for the pool's capacity."""


def pool_capacity(members: Iterable[WorkerSummary], waiting: WaitingDemand | None = None) -> PoolCapacity:
    """Capacity totals over the ready workers, counts over every member, averages over those measured."""
    cap = PoolCapacity(waiting_sessions=waiting.sessions if waiting else 0)
    phases: Counter[str] = Counter()
    cpu: list[float] = []
    memory: list[float] = []
    for row in members:
        role = member_role(row)
        if role is MemberRole.GONE:
            continue
        phases[row.phase] += 1
        cap.sessions += row.sessions
        if role is MemberRole.ACTIVE:
            cap.workers += 1
        elif role is MemberRole.PARKED:
            cap.parked += 1
        elif role is MemberRole.WARMING:
            cap.warming += 1
        elif role is MemberRole.LEAVING:
            cap.leaving += 1
        else:
            cap.failed += 1
        if role is not MemberRole.ACTIVE:
            continue
        if not serving(row):
            if on_its_way(row):
                cap.on_the_way += 1
            else:
                cap.stuck += 1
            continue
        cap.ready += 1
        if row.sessions == 0:
            cap.empty_ready += 1
        declared, allocated = row.capacity.declared, row.capacity.allocated
        cap.total_cpu_cores += declared.cpu_cores
        cap.available_cpu_cores += max(0.0, declared.cpu_cores - allocated.cpu_cores)
        cap.total_memory_gb += declared.memory_gb
        cap.available_memory_gb += max(0.0, declared.memory_gb - allocated.memory_gb)
        cap.total_storage_gb += declared.storage_gb
        cap.available_storage_gb += max(0.0, declared.storage_gb - allocated.storage_gb)
        cap.total_nodes += declared.max_nodes
        cap.available_nodes += max(0, declared.max_nodes - allocated.max_nodes)
        if row.cpu_percent is not None:
            cpu.append(row.cpu_percent)
        if row.memory_percent is not None:
            memory.append(row.memory_percent)
    cap.by_phase = dict(sorted(phases.items()))
    cap.avg_cpu_percent = round(sum(cpu) / len(cpu), 1) if cpu else None
    cap.avg_memory_percent = round(sum(memory) / len(memory), 1) if memory else None
    for name in ("total_cpu_cores", "available_cpu_cores", "total_memory_gb", "available_memory_gb",
                 "total_storage_gb", "available_storage_gb"):
        setattr(cap, name, round(getattr(cap, name), 2))
    return cap


def workers_for(sessions: int, per_worker: int) -> int:
    """Workers needed for `sessions` at `per_worker` each."""
    return math.ceil(sessions / per_worker) if sessions > 0 else 0


#: A worker's place in the retirement order: (serving, healthy, licensed, labs, busy, name, id).
RetirementRank = tuple[bool, bool, bool, int, float, str, str]


def retirement_rank(*, serving: bool, healthy: bool, licensed: bool, labs: int, cpu_percent: float | None,
                    name: str, worker_id: str) -> RetirementRank:
    """A pool's worker's place in the retirement order, least useful first: not serving yet, unhealthy,
    unlicensed, fewest labs, least busy (measured CPU), then by name and id (so that the choice is
    reproducible). Shared by the autoscaler (`retirement_order`, over rows) and the scheduler (over its
    candidates, `lablet_controller.domain.track_pools.packing_rank`)."""
    return serving, healthy, licensed, labs, cpu_percent or 0.0, name, worker_id


def retirement_order(row: WorkerSummary) -> RetirementRank:
    """Sort key of a pool's workers, least useful first (`retirement_rank`). The autoscaler retires a pool's
    surplus from the front of this order; the scheduler packs a pool's sessions from its back, so the workers
    that will be retired are the ones left to empty. Labs that CML has not counted yet are the worker's
    sessions (as the scheduler counts them; the autoscaler only retires workers that hold none)."""
    return retirement_rank(
        serving=serving(row), healthy=row.health_status == HealthStatus.HEALTHY,
        licensed=row.license_status is LicenseStatus.REGISTERED,
        labs=row.labs_count if row.labs_count is not None else row.sessions, cpu_percent=row.cpu_percent,
        name=row.name, worker_id=row.id)


__all__ = ["MemberRole", "PoolCapacity", "RetirementRank", "WaitingDemand", "member_role", "on_its_way",
           "pool_capacity", "retirement_order", "retirement_rank", "serving", "workers_for"]
