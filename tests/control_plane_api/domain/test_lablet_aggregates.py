"""LabletDefinition, LabletSession and the worker's capacity ledger, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.lablet_definition import DefinitionContent, LabletDefinition
from control_plane_api.domain.lablet_observation import aggregate, compare_ports, significant_difference
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.reports import DiscoveredInstance
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_capacity import PortRange, release, reserve
from lcm_core.domain.enums import HealthStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.lablets import (
    LabletDefinitionStatus,
    LabletSessionStatus,
    ResourceObservation,
    ResourceRequirements,
    SchedulingDecision,
)
from lcm_core.errors import ConflictError, InvalidError
from lcm_core.testing import sample_topologies

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
S = LabletSessionStatus
DECISION = SchedulingDecision(success=True, worker_id="w", reason="best fit")


def definition(**content) -> LabletDefinition:
    made, _ = LabletDefinition.create("ccna", DefinitionContent(lab_topology_yaml=sample_topologies.load(),
                                                                **content), NOW, "admin")
    made.set_status(LabletDefinitionStatus.ACTIVE, NOW, "admin")
    return made


def session(**content) -> LabletSession:
    made, events = LabletSession.create(definition(**content), "student", NOW, NOW + timedelta(hours=1), NOW, "admin")
    assert [e.type for e in events] == ["lablet.session.created"]
    return made


def worker(cores: float = 48) -> Worker:
    made, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                   instance_type="m5zn.metal", state="running"), NOW, "test")
    made.service_status = ServiceStatus.AVAILABLE
    made.health_status = HealthStatus.HEALTHY
    made.capacity.declared.cpu_cores = cores
    return made


def observation(cpu: float, memory_mb: int, ports: dict[str, int]) -> ResourceObservation:
    return ResourceObservation(observed_at=NOW, observer="lablet-controller", total_cpu_cores=cpu,
                               total_memory_mb=memory_mb, actual_node_count=3, observed_ports=ports)


def test_definition_versions_and_guard() -> None:
    made = definition()
    assert made.version == 1
    assert [p.name for p in made.port_template] == ["R1_serial", "R2_serial", "PC_serial", "PC_vnc"]
    same = DefinitionContent(lab_topology_yaml=made.lab_topology_yaml)
    assert made.update(1, same, NOW, "admin") == []
    with pytest.raises(ConflictError, match="at version 1, not 3"):
        made.update(3, same, NOW, "admin")
    with pytest.raises(InvalidError, match="invalid lab topology"):
        made.update(1, DefinitionContent(lab_topology_yaml="lab: ["), NOW, "admin")
    events = made.update(1, DefinitionContent(lab_topology_yaml=made.lab_topology_yaml, lab_track="ccnp"), NOW, "a")
    assert (made.version, [e.type for e in events]) == (2, ["lablet.definition.updated"])
    assert made.flag_for_review(1, "old version", NOW) == []  # observations of an older version do not flag
    assert [e.type for e in made.flag_for_review(2, "cpu", NOW)] == ["lablet.definition.review_flagged"]
    assert made.flag_for_review(2, "cpu", NOW) == []


def test_declared_requirements_win_over_the_estimate() -> None:
    made = definition(resource_requirements=ResourceRequirements(cpu_cores=8, memory_gb=16, storage_gb=20,
                                                                 node_count=3))
    assert made.resource_requirements.cpu_cores == 8
    assert made.estimated_requirements.cpu_cores == 3


def test_session_table_is_enforced() -> None:
    s = session()
    with pytest.raises(ConflictError, match="from pending to running"):
        s.transition(S.RUNNING, "x", NOW, "c")
    with pytest.raises(ConflictError, match="/schedule"):
        s.transition(S.SCHEDULED, "x", NOW, "c")
    s.schedule("w", {"PC_serial": 5000}, DECISION, NOW, "c")
    assert s.schedule("w", {"PC_serial": 5000}, DECISION, NOW, "c") == []  # repeated
    with pytest.raises(ConflictError):
        s.schedule("other", {}, DECISION, NOW, "c")
    s.transition(S.PENDING, "worker went away", NOW, "c")
    assert s.pending_reason is not None
    assert (s.worker_id, s.allocated_ports, s.pending_reason.startswith("unscheduled")) == (None, {}, True)
    s.schedule("w", {}, DECISION, NOW, "c")
    s.transition(S.INSTANTIATING, "import", NOW, "c")
    with pytest.raises(ConflictError, match="/mark-ready"):
        s.transition(S.READY, "x", NOW, "c")
    s.mark_ready("lab", NOW, "c")
    with pytest.raises(ConflictError):
        s.mark_ready("other-lab", NOW, "c")
    assert s.transition(S.READY, "again", NOW, "c") == []
    s.transition(S.RUNNING, "in", NOW, "c")
    assert s.expire(NOW + timedelta(days=1), "cpa") == []  # a session with a lab does not expire


def test_expiry_and_terminate() -> None:
    s = session()
    assert s.expire(NOW, "cpa") == []
    s.expire(NOW + timedelta(hours=1), "cpa")
    assert s.status is S.EXPIRED
    t = session()
    t.schedule("w", {}, DECISION, NOW, "c")
    t.transition(S.INSTANTIATING, "import", NOW, "c")
    events = t.request_terminate(NOW, "admin", "cancelled")
    assert (t.status, t.terminate_requested) == (S.STOPPING, True)
    assert [e.type for e in events] == ["lablet.session.terminate.requested", "lablet.session.status.changed"]
    assert t.request_terminate(NOW, "admin", "again") == []


def test_observation_drift_and_review() -> None:
    drift = compare_ports({"PC_serial": 5000, "PC_vnc": 5001}, {"PC_vnc": 5001, "PC_serial": 5000})
    assert not drift.detected  # by name, not position
    drift = compare_ports({"PC_serial": 5000, "PC_vnc": 5001}, {"PC_serial": 5009, "R9_vnc": 5010})
    assert drift.as_dict() == {"missing": {"PC_vnc": 5001}, "changed": {"PC_serial": {"allocated": 5000,
                                                                                     "observed": 5009}},
                               "unexpected": {"R9_vnc": 5010}}
    assert drift.drifted_ports() == {"PC_serial": 5009, "R9_vnc": 5010}
    declared = ResourceRequirements(cpu_cores=4, memory_gb=8)
    assert significant_difference(declared, observation(4.5, 8 * 1024, {}), 0.25) is None
    difference = significant_difference(declared, observation(4, 12 * 1024, {}), 0.25)
    assert difference is not None
    assert "memory_gb observed 12.00" in difference
    summary = aggregate([observation(2, 1024, {}), observation(4, 3072, {})], drift_count=1)
    assert summary["cpu_cores"] == {"max": 4, "avg": 3, "latest": 4}
    assert summary["memory_gb"] == {"max": 3, "avg": 2, "latest": 3}
    assert summary["storage_gb"] == {"max": None, "avg": None, "latest": None}


def test_capacity_ledger_reserves_idempotently_and_releases_once() -> None:
    w = worker(cores=10)
    needs = ResourceRequirements(cpu_cores=4, memory_gb=8, storage_gb=10, node_count=3)
    template = definition().port_template
    ports = PortRange(5040, 5047)
    first, events = reserve(w, "s1", needs, template, ports, NOW)
    assert first == {"R1_serial": 5041, "R2_serial": 5042, "PC_serial": 5043, "PC_vnc": 5044}
    assert [e.type for e in events] == ["worker.capacity.updated"]
    assert reserve(w, "s1", needs, template, ports, NOW) == (first, [])
    second, _ = reserve(w, "s2", needs, template, ports, NOW)
    assert sorted(second.values()) == [5040, 5045, 5046, 5047]
    with pytest.raises(ConflictError, match="cpu_cores needs 4, 2 free of 10"):
        reserve(w, "s3", needs, template, PortRange(5000, 5100), NOW)
    assert w.capacity.allocated.cpu_cores == 8
    assert len(release(w, "s1")) == 1
    assert release(w, "s1") == []
    assert (w.capacity.allocated.cpu_cores, w.capacity.session_ids) == (4, ["s2"])
    with pytest.raises(ConflictError, match="no free port"):
        reserve(w, "s4", needs, template, PortRange(5045, 5047), NOW)


def test_a_reservation_of_an_older_session_version_blocks_a_new_one_until_released() -> None:
    w = worker()
    needs = ResourceRequirements(cpu_cores=2)
    ports, _ = reserve(w, "s", needs, [], PortRange(5000, 5010), NOW, session_version=1)
    assert reserve(w, "s", needs, [], PortRange(5000, 5010), NOW, session_version=1) == (ports, [])
    with pytest.raises(ConflictError, match="being released"):
        reserve(w, "s", needs, [], PortRange(5000, 5010), NOW, session_version=3)
    release(w, "s")
    reserve(w, "s", needs, [], PortRange(5000, 5010), NOW, session_version=3)
    assert w.capacity.reservations["s"].session_version == 3


def test_ledger_refuses_unavailable_workers_and_respects_the_licence_node_limit() -> None:
    w = worker()
    w.service_status = ServiceStatus.UNAVAILABLE
    needs = ResourceRequirements(cpu_cores=1, node_count=3)
    with pytest.raises(ConflictError, match="cannot take sessions"):
        reserve(w, "s", needs, [], PortRange(5000, 5001), NOW)
    w.service_status = ServiceStatus.AVAILABLE
    w.license.status, w.license.node_limit = LicenseStatus.UNREGISTERED, 5
    reserve(w, "a", needs, [], PortRange(5000, 5001), NOW)
    with pytest.raises(ConflictError, match="nodes need 3, 2 free of 5"):
        reserve(w, "b", needs, [], PortRange(5000, 5001), NOW)


@pytest.mark.parametrize(("change", "why"), [
    ({"health_status": HealthStatus.UNREACHABLE}, "health unreachable"),
    ({"health_status": HealthStatus.CRITICAL}, "health critical"),
    ({"health_status": HealthStatus.UNKNOWN}, "health unknown"),
    ({"status": WorkerStatus.DRAINING}, "draining"),
    ({"status": WorkerStatus.STOPPED}, "not running"),
])
def test_the_ledger_refuses_a_worker_that_may_not_take_sessions(change: dict, why: str) -> None:
    w = worker()
    for name, value in change.items():
        setattr(w, name, value)
    with pytest.raises(ConflictError, match=f"cannot take sessions: {why}") as refused:
        reserve(w, "s", ResourceRequirements(cpu_cores=1), [], PortRange(5000, 5001), NOW)
    assert refused.value.details["reason"] == why
    assert w.capacity.reservations == {}


def test_the_ledger_accepts_a_degraded_worker() -> None:
    w = worker()
    w.health_status = HealthStatus.DEGRADED
    assert reserve(w, "s", ResourceRequirements(cpu_cores=1), [], PortRange(5000, 5001), NOW)[1]
