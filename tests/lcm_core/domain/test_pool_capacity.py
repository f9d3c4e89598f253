"""A pool's capacity summary (`pool_capacity`: workers by role and phase, total and available resources of the
serving workers, average utilisation, sessions) and the retirement order of its workers (`retirement_order`):
least useful first, the order the autoscaler retires in and the scheduler packs against (docs/pools.md)."""

from __future__ import annotations

from typing import Any

import pytest

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import WaitingDemand, pool_capacity, retirement_order, retirement_rank
from lcm_core.domain.workers import CapacitySummary, Resources, WorkerSummary

METAL = Resources(cpu_cores=48, memory_gb=192, storage_gb=500, max_nodes=200)


def member(name: str, **kw: Any) -> WorkerSummary:
    """A serving member of a pool (running, CML available, licensed, healthy) holding no session."""
    values: dict[str, Any] = {
        "id": f"id-{name}", "name": name, "pool_id": "p1", "lab_track": "ccna", "status": WorkerStatus.RUNNING,
        "desired_status": DesiredStatus.RUNNING, "service_status": ServiceStatus.AVAILABLE,
        "health_status": "healthy", "license_status": LicenseStatus.REGISTERED, "phase": "READY",
        "labs_count": 0, "cpu_percent": 10.0}
    return WorkerSummary(**(values | kw))


ORDER = [
    # (case, the less useful worker, the more useful one)
    ("not serving yet before serving", member("z", status=WorkerStatus.STARTING, phase="STARTING"), member("a")),
    ("degraded before healthy", member("z", health_status="degraded", labs_count=3), member("a")),
    ("unlicensed before licensed (both serving)",
     member("z", license_status=LicenseStatus.EVALUATION, phase="READY_UNLICENSED", labs_count=3), member("a")),
    ("fewer labs before more", member("z", labs_count=1, cpu_percent=90.0), member("a", labs_count=2)),
    ("labs not counted yet are its sessions", member("z", labs_count=None, sessions=1),
     member("a", labs_count=None, sessions=2)),
    ("equal labs: less busy before busier", member("z", cpu_percent=None), member("a", cpu_percent=1.0)),
    ("equally busy: by name", member("a"), member("b")),
    ("same name: by id", member("a", id="id-1"), member("a", id="id-2")),
]


@pytest.mark.parametrize(("retired_first", "kept"), [case[1:] for case in ORDER], ids=[case[0] for case in ORDER])
def test_the_least_useful_worker_comes_first(retired_first: WorkerSummary, kept: WorkerSummary) -> None:
    assert retirement_order(retired_first) < retirement_order(kept)
    assert [r.id for r in sorted([kept, retired_first], key=retirement_order)] == [retired_first.id, kept.id]


def test_the_rank_of_a_row_is_built_from_its_fields() -> None:
    row = member("cml-4", health_status="degraded", labs_count=None, sessions=2, cpu_percent=None)
    assert retirement_order(row) == retirement_rank(serving=True, healthy=False, licensed=True, labs=2,
                                                    cpu_percent=0.0, name="cml-4", worker_id="id-cml-4")


def test_the_capacity_summary_counts_every_member_and_totals_the_serving_ones() -> None:
    """Two serving workers (one holding 2 sessions), one on its way, one stuck (CML failed), one parked, one
    leaving with a session, one failed, one terminated: resources and utilisation are those of the serving
    workers; roles and phases count every member not gone; sessions count every member's."""
    busy = CapacitySummary(declared=METAL, allocated=Resources(cpu_cores=12, memory_gb=50, storage_gb=40,
                                                               max_nodes=30))
    overbooked = CapacitySummary(declared=METAL, allocated=Resources(cpu_cores=60, memory_gb=10, storage_gb=10,
                                                                     max_nodes=250))
    rows = [
        member("a", sessions=2, phase="ACTIVE", capacity=busy, cpu_percent=60.0, memory_percent=50.0),
        member("b", capacity=overbooked, cpu_percent=20.0, memory_percent=None),
        member("c", status=WorkerStatus.PROVISIONING, phase="PROVISIONING_EC2", capacity=CapacitySummary(
            declared=METAL), health_status="unknown", cpu_percent=None),
        member("d", service_status=ServiceStatus.ERROR, phase="STARTING", capacity=CapacitySummary(declared=METAL)),
        member("e", status=WorkerStatus.STOPPED, desired_status=DesiredStatus.STOPPED, phase="STOPPED"),
        member("f", status=WorkerStatus.DRAINING, drain_then=DesiredStatus.STOPPED, phase="DRAINING", sessions=1),
        member("g", status=WorkerStatus.FAILED, phase="FAILED"),
        member("h", status=WorkerStatus.TERMINATED, phase="TERMINATED", sessions=0),
    ]
    cap = pool_capacity(rows, WaitingDemand(sessions=3, cpu_cores=9, memory_gb=7.5))
    assert (cap.workers, cap.ready, cap.on_the_way, cap.stuck, cap.empty_ready) == (4, 2, 1, 1, 1)
    assert (cap.parked, cap.leaving, cap.failed, cap.warming) == (1, 1, 1, 0)
    assert cap.by_phase == {"ACTIVE": 1, "DRAINING": 1, "FAILED": 1, "PROVISIONING_EC2": 1, "READY": 1,
                            "STARTING": 1, "STOPPED": 1}
    assert (cap.total_cpu_cores, cap.available_cpu_cores) == (96, 36)  # 48 - 12, and none left on b
    assert (cap.total_memory_gb, cap.available_memory_gb) == (384, 324)
    assert (cap.total_storage_gb, cap.available_storage_gb) == (1000, 950)
    assert (cap.total_nodes, cap.available_nodes) == (400, 170)
    assert (cap.avg_cpu_percent, cap.avg_memory_percent) == (40.0, 50.0)  # over the measured ones only
    assert (cap.sessions, cap.waiting_sessions) == (3, 3)


def test_an_empty_pool_has_no_utilisation() -> None:
    cap = pool_capacity([])
    assert (cap.workers, cap.total_cpu_cores, cap.avg_cpu_percent, cap.avg_memory_percent, cap.by_phase) == (
        0, 0, None, None, {})
