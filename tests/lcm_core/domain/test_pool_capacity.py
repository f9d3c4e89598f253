"""The retirement order of a pool's workers (`lcm_core.domain.pool_capacity.retirement_order`): least useful
first, the order the autoscaler retires in and the scheduler packs against (docs/pools.md)."""

from __future__ import annotations

from typing import Any

import pytest

from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import retirement_order, retirement_rank
from lcm_core.domain.workers import WorkerSummary


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
