"""The WorkerPool aggregate's rules, and a worker's side of pool membership, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.pool import StaleEvaluation, WorkerPool, evaluation_fingerprint
from control_plane_api.domain.reports import DiscoveredInstance, StatusReport
from control_plane_api.domain.system_settings import WorkerTemplate
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_state import Reservation
from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import PoolCapacity
from lcm_core.domain.pools import (
    HISTORY_LIMIT,
    PoolEvaluation,
    PoolPhase,
    PoolSpec,
    ScalingAction,
    ScalingConfig,
    ScalingDecision,
    ScalingTrigger,
)
from lcm_core.errors import ConflictError, InvalidError, VersionConflict

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def spec(**changes: object) -> PoolSpec:
    scaling = changes.pop("scaling", {"min_workers": 1, "max_workers": 5})
    return PoolSpec.model_validate({"name": "ccna-pool", "lab_track": "ccna", "template_name": "standard",
                                    "scaling": scaling, **changes})


def make(**changes: object) -> WorkerPool:
    pool, _ = WorkerPool.created(spec(**changes), NOW, "admin")
    pool.version = 1
    return pool


def types(events) -> list[str]:
    return [e.type for e in events]


def evaluation(pool: WorkerPool, **fields: object) -> PoolEvaluation:
    return PoolEvaluation.model_validate({"expected_version": pool.version, "observed_at": NOW, "phase": pool.phase,
                                          "capacity": pool.capacity, "desired_workers": pool.desired_workers,
                                          **fields})


def decision(action: str = "scale_up", trigger: str = "policy", at: datetime = NOW, **fields: object
             ) -> ScalingDecision:
    return ScalingDecision.model_validate({"at": at, "action": action, "trigger": trigger, "from_workers": 1,
                                           "to_workers": 2, "reason": "cpu above 75%", **fields})


def test_a_new_pool_is_pending_at_its_minimum() -> None:
    pool, events = WorkerPool.created(spec(scaling={"min_workers": 2, "max_workers": 4}), NOW, "admin")
    assert (pool.phase, pool.desired_workers, pool.launches, pool.created_at) == (PoolPhase.PENDING, 2, 0, NOW)
    assert types(events) == ["pool.created"]
    assert events[0].data["pool_id"] == pool.id
    assert pool.view().model_dump().keys() == set(type(pool.view()).model_fields)


def test_an_update_replaces_the_spec_and_clamps_the_size_into_the_new_bounds() -> None:
    pool = make()
    pool.scale(4, NOW, "admin")
    later = NOW + timedelta(minutes=1)
    events = pool.update(spec(scaling={"min_workers": 1, "max_workers": 2}, description="smaller"), later, "admin")
    assert types(events) == ["pool.updated", "pool.scaled"]
    assert events[0].data["changed"] == ["description", "scaling"]
    assert pool.desired_workers == 2
    clamp = pool.history[-1]
    assert (clamp.trigger, clamp.action, clamp.from_workers, clamp.to_workers) == (
        ScalingTrigger.BOUNDS, ScalingAction.SCALE_DOWN, 4, 2)
    assert pool.last_scale_down_at is None  # reaching the bounds starts no cooldown
    assert pool.update(pool.spec(), later, "admin") == []


def test_a_manual_scale_stays_within_the_bounds_and_starts_the_cooldown() -> None:
    pool = make()
    with pytest.raises(InvalidError, match=r"between 1 and 5 workers .*: 6 is outside"):
        pool.scale(6, NOW, "admin")
    with pytest.raises(InvalidError, match="between 1 and 5"):
        pool.scale(0, NOW, "admin")
    events = pool.scale(3, NOW, "admin", "course starts")
    assert types(events) == ["pool.scaled"]
    assert events[0].data["decision"]["reason"] == "course starts"
    last = pool.last_decision
    assert last is not None
    assert (last.trigger, last.action, last.from_workers, last.to_workers, last.by) == (
        ScalingTrigger.MANUAL, ScalingAction.SCALE_UP, 1, 3, "admin")
    assert (pool.desired_workers, pool.last_scale_up_at, pool.last_scale_down_at) == (3, NOW, None)
    same = pool.scale(3, NOW + timedelta(minutes=1), "admin")
    assert types(same) == ["pool.decision.recorded"]
    assert pool.last_scale_up_at == NOW


def test_an_operators_decisions_record_the_pool_as_it_stood() -> None:
    """A manual scale and a clamp into new bounds are kept in the history with the figures they were taken on,
    like the autoscaler's: the size, the bounds and the last capacity the autoscaler reported."""
    pool = make()
    pool.capacity = PoolCapacity(workers=2, ready=1, on_the_way=1, sessions=7, waiting_sessions=3,
                                 avg_cpu_percent=61.5, avg_memory_percent=40.0)
    pool.scale(4, NOW, "admin")
    figures = {"desired": 1, "workers": 2, "ready": 1, "sessions": 7, "waiting": 3, "avg_cpu_percent": 61.5,
               "avg_memory_percent": 40.0, "min_workers": 1, "max_workers": 5}
    assert pool.history[-1].inputs == figures
    pool.update(spec(scaling={"min_workers": 1, "max_workers": 2}), NOW, "admin")
    assert pool.history[-1].trigger is ScalingTrigger.BOUNDS
    assert pool.history[-1].inputs == {**figures, "desired": 4, "max_workers": 2}


def test_a_draining_or_deleted_pool_is_not_scaled_and_a_closed_one_not_changed() -> None:
    pool = make()
    assert types(pool.drain(NOW, "admin")) == ["pool.draining"]
    assert pool.drain(NOW, "admin") == []
    with pytest.raises(ConflictError, match="draining"):
        pool.scale(2, NOW, "admin")
    assert types(pool.undrain(NOW, "admin")) == ["pool.drain.cancelled"]
    assert pool.undrain(NOW, "admin") == []
    pool.launches = 1  # it launched once: the autoscaler terminates it
    assert types(pool.delete(NOW, "admin", has_members=False)) == ["pool.deleting"]
    assert (pool.deleting, pool.phase) == (True, PoolPhase.PENDING)
    assert pool.delete(NOW, "admin", has_members=False) == []
    for refused in (lambda: pool.scale(2, NOW, "admin"), lambda: pool.drain(NOW, "admin"),
                    lambda: pool.update(spec(description="x"), NOW, "admin"), lambda: pool.adopt("w", NOW, "a")):
        with pytest.raises(ConflictError, match="being deleted"):
            refused()


def test_a_pool_that_never_had_a_worker_is_terminated_at_once() -> None:
    pool = make()
    events = pool.delete(NOW, "admin", has_members=False)
    assert types(events) == ["pool.deleting", "pool.phase.changed", "pool.terminated"]
    assert pool.terminated
    with pytest.raises(ConflictError, match="terminated"):
        pool.scale(1, NOW, "admin")
    with_member = make()
    assert types(with_member.delete(NOW, "admin", has_members=True)) == ["pool.deleting"]


def test_the_history_keeps_the_newest_decisions() -> None:
    pool = make(scaling={"min_workers": 0, "max_workers": 100})
    for n in range(HISTORY_LIMIT + 10):
        pool.scale(n % 100, NOW + timedelta(seconds=n), "admin")
    assert len(pool.history) == HISTORY_LIMIT
    assert pool.history[-1].to_workers == HISTORY_LIMIT + 9
    assert pool.history[0].to_workers == 10


def test_an_evaluation_of_another_version_is_refused_and_not_retried() -> None:
    pool = make()
    report = evaluation(pool, expected_version=0)
    with pytest.raises(StaleEvaluation, match="changed since the autoscaler read it") as refused:
        pool.apply_evaluation(report, NOW, "worker-controller@9")
    assert not isinstance(refused.value, VersionConflict)


def test_an_evaluation_records_phase_capacity_size_decision_and_launches() -> None:
    pool = make()
    capacity = PoolCapacity(workers=1, ready=0)
    report = evaluation(pool, phase="initializing", capacity=capacity, desired_workers=2,
                        decision=decision(), launch=["us-east-1", "us-east-1"])
    events, launches = pool.apply_evaluation(report, NOW, "worker-controller@9")
    assert types(events) == ["pool.phase.changed", "pool.capacity.updated", "pool.scaled"]
    assert launches == [0, 1]
    assert (pool.launches, pool.desired_workers, pool.capacity, pool.ready_since) == (2, 2, capacity, None)
    assert pool.last_scale_up_at == NOW  # a policy decision starts the cooldown
    pool.version = 2
    later = NOW + timedelta(minutes=1)
    events, launches = pool.apply_evaluation(evaluation(pool, phase="ready", observed_at=later,
                                                        launch=["us-east-1"]), later, "worker-controller@9")
    assert types(events) == ["pool.phase.changed"]  # the same capacity: no capacity event
    assert (launches, pool.ready_since) == ([2], later)
    pool.version = 3
    pool.apply_evaluation(evaluation(pool, phase="scaling_up"), later, "w")
    pool.version = 4
    pool.apply_evaluation(evaluation(pool, phase="ready"), later + timedelta(minutes=5), "w")
    assert pool.ready_since == later  # the first time only


def test_only_policy_and_manual_decisions_start_a_cooldown() -> None:
    pool = make()
    for trigger in ("bounds", "converge", "drain", "delete"):
        _, launches = pool.apply_evaluation(evaluation(pool, decision=decision("scale_down", trigger)), NOW, "w")
        pool.version += 1
        assert launches == []
    assert (pool.last_scale_up_at, pool.last_scale_down_at) == (None, None)
    events, _ = pool.apply_evaluation(evaluation(pool, decision=decision("none", reason="within thresholds")),
                                      NOW, "w")
    assert types(events) == ["pool.decision.recorded"]
    assert len(pool.history) == 5


def test_an_evaluation_that_changes_nothing_but_its_time_is_not_a_change() -> None:
    pool = make()
    before = evaluation_fingerprint(pool)
    events, _ = pool.apply_evaluation(evaluation(pool, observed_at=NOW + timedelta(minutes=3)), NOW, "w")
    assert events == []
    assert evaluation_fingerprint(pool) == before


def test_an_evaluation_launches_only_in_the_pools_regions() -> None:
    """The pool's regions are the operator's: a launch elsewhere is refused (422) and nothing is recorded."""
    pool = make()  # us-east-1
    for field in ("launch", "warm_up"):
        with pytest.raises(InvalidError, match="eu-west-1 is not a region of pool 'ccna-pool' "):
            pool.apply_evaluation(evaluation(pool, **{field: ["us-east-1", "eu-west-1"]}), NOW, "w")
    assert (pool.launches, pool.history) == (0, [])


def test_a_terminated_evaluation_and_the_refusals_of_a_closing_pool() -> None:
    pool = make()
    pool.drain(NOW, "admin")
    with pytest.raises(ConflictError, match="draining: it launches and resumes no worker"):
        pool.apply_evaluation(evaluation(pool, launch=["us-east-1"]), NOW, "w")
    pool.launches = 3
    pool.delete(NOW, "admin", has_members=True)
    events, _ = pool.apply_evaluation(evaluation(pool, phase="terminated", desired_workers=0), NOW, "w")
    assert types(events) == ["pool.phase.changed", "pool.terminated"]
    with pytest.raises(ConflictError, match="terminated"):
        pool.apply_evaluation(evaluation(pool), NOW, "w")


def test_scaling_config_bounds_are_the_contract() -> None:
    assert ScalingConfig(min_workers=2, max_workers=2).max_workers == 2
    with pytest.raises(ValueError, match="above max_workers"):
        spec(scaling={"min_workers": 3, "max_workers": 2})


# ---------------------------------------------------------------------- the worker's side


def template() -> WorkerTemplate:
    return WorkerTemplate(name="standard")


def running_worker(pool_id: str | None = None) -> Worker:
    worker, _ = Worker.discovered(DiscoveredInstance(aws_instance_id="i-0123456789abcdef0", aws_region="us-east-1",
                                                     instance_type="m5zn.metal", state="running"), NOW, "test")
    worker.pool_id = pool_id
    return worker


def test_a_pool_worker_is_a_member_from_the_start_and_asks_for_its_licence_once() -> None:
    worker, events = Worker.requested(template(), "us-east-1", "ccna-pool-000", "w1", NOW, "pool ccna-pool",
                                      pool_id="p1", lab_track="ccna", register_license=True)
    assert (worker.pool_id, worker.lab_track, worker.license.register_when_available) == ("p1", "ccna", True)
    assert events[0].data["pool_id"] == "p1"
    worker.apply_status_report(StatusReport(ec2_state="running", service_status=ServiceStatus.STARTING), NOW, "wc")
    assert worker.license.pending_action is None
    found = worker.apply_status_report(StatusReport(ec2_state="running", service_status=ServiceStatus.AVAILABLE),
                                       NOW, "wc")
    assert "worker.license.requested" in types(found)
    assert (worker.license.pending_action, worker.license.status) == ("register", LicenseStatus.REGISTERING)
    assert worker.license.register_when_available is False
    plain, _ = Worker.requested(template(), "us-east-1", "x", "w2", NOW, "admin")
    plain.apply_status_report(StatusReport(ec2_state="running", service_status=ServiceStatus.AVAILABLE), NOW, "wc")
    assert plain.license.pending_action is None
    assert plain.service_status is ServiceStatus.AVAILABLE


def test_joining_and_leaving_a_pool() -> None:
    worker = running_worker()
    worker.lab_track = "old"
    assert types(worker.join_pool("p1", "ccna", NOW, "admin")) == ["worker.pool.changed"]
    assert (worker.pool_id, worker.lab_track) == ("p1", "ccna")
    assert worker.join_pool("p1", "ccna", NOW, "admin") == []
    with pytest.raises(ConflictError, match="belongs to pool p1"):
        worker.join_pool("p2", "ccnp", NOW, "admin")
    with pytest.raises(ConflictError, match="in pool p1, not p2"):
        worker.leave_pool("p2", "ccnp", NOW, "admin")
    events = worker.leave_pool("p1", "ccna", NOW, "admin")
    assert events[0].data["previous_pool_id"] == "p1"
    assert (worker.pool_id, worker.lab_track) == (None, None)  # the pool's track goes with it
    assert worker.leave_pool("p1", "ccna", NOW, "admin") == []
    worker.observe_ec2_state("terminated", NOW, None, "test")
    with pytest.raises(ConflictError, match="terminated"):
        worker.join_pool("p1", "ccna", NOW, "admin")


def test_a_worker_being_drained_for_termination_cannot_join_a_pool() -> None:
    """Asked to be terminated through a drain is asked to be terminated: the pool would count a worker that is
    going away (its session ends first). One drained to stop may join."""
    worker = running_worker()
    worker.capacity.reservations["s1"] = Reservation()
    worker.request_drain(DesiredStatus.TERMINATED, NOW, "admin", None)
    assert worker.desired_status is None  # still draining: its session runs
    with pytest.raises(ConflictError, match="terminated"):
        worker.join_pool("p1", "ccna", NOW, "admin")
    assert worker.pool_id is None
    stopping = running_worker()
    stopping.request_drain(DesiredStatus.STOPPED, NOW, "admin", None)
    assert types(stopping.join_pool("p1", "ccna", NOW, "admin")) == ["worker.pool.changed"]


def test_retiring_drains_a_running_member_and_terminates_one_without_an_instance() -> None:
    worker = running_worker("p1")
    found = worker.retire_from_pool("p1", DesiredStatus.STOPPED, NOW, "pool ccna-pool")
    assert "worker.draining" in types(found)
    assert worker.drain is not None
    assert worker.desired_status is DesiredStatus.STOPPED
    waiting, _ = Worker.requested(template(), "us-east-1", "x", "w2", NOW, "admin", pool_id="p1")
    waiting.retire_from_pool("p1", DesiredStatus.STOPPED, NOW, "pool")
    assert waiting.desired_status is DesiredStatus.TERMINATED
    with pytest.raises(ConflictError, match="not a member of pool p2"):
        waiting.retire_from_pool("p2", DesiredStatus.STOPPED, NOW, "pool")


def test_resuming_starts_a_parked_member() -> None:
    worker = running_worker("p1")
    worker.observe_ec2_state("stopped", NOW, None, "test")
    worker.request_desired_status(DesiredStatus.STOPPED, NOW, "pool")
    worker.resume_for_pool("p1", NOW, "pool")
    assert (worker.desired_status, worker.status) == (DesiredStatus.RUNNING, WorkerStatus.STOPPED)


def test_the_last_launching_evaluation_sent_again_is_a_replay_with_the_same_launch_numbers() -> None:
    pool = make()
    report = evaluation(pool, desired_workers=2, launch=["us-east-1", "us-east-1"], decision=decision())
    _, launches = pool.apply_evaluation(report, NOW, "w")
    pool.version += 1  # stored
    events, again = pool.apply_evaluation(report, NOW + timedelta(seconds=5), "w")
    assert (events, again, pool.launches, len(pool.history)) == ([], launches, 2, 1)
    other = report.model_copy(update={"launch": ["us-east-1"]})
    with pytest.raises(StaleEvaluation):
        pool.apply_evaluation(other, NOW, "w")
    pool.scale(3, NOW, "admin")
    pool.version += 1  # an operator changed it since: no replay any more
    with pytest.raises(StaleEvaluation):
        pool.apply_evaluation(report, NOW, "w")


def test_resuming_a_member_on_its_way_to_stop_keeps_it_running() -> None:
    worker = running_worker("p1")
    worker.retire_from_pool("p1", DesiredStatus.STOPPED, NOW, "pool")
    assert (worker.status, worker.desired_status) == (WorkerStatus.DRAINING, DesiredStatus.STOPPED)
    found = worker.resume_for_pool("p1", NOW, "pool")
    assert "worker.drain.cancelled" in types(found)
    assert (worker.status, worker.desired_status, worker.drain) == (WorkerStatus.RUNNING, DesiredStatus.RUNNING,
                                                                    None)
    assert worker.resume_for_pool("p1", NOW, "pool") == []


def test_undraining_recalls_only_a_drain_of_its_pool_still_under_way() -> None:
    held = running_worker("p1")
    held.capacity.reservations["s1"] = Reservation()
    held.retire_from_pool("p1", DesiredStatus.STOPPED, NOW, "the drain of pool ccna-pool")
    assert held.drain is not None
    assert held.drain.pool_id == "p1"
    assert types(held.recall_to_pool("p1", NOW, "admin")) == ["worker.status.updated", "worker.drain.cancelled"]
    assert (held.status, held.drain) == (WorkerStatus.RUNNING, None)

    own = running_worker("p1")
    own.capacity.reservations["s1"] = Reservation()
    own.request_drain(DesiredStatus.STOPPED, NOW, "admin", "maintenance")
    assert own.recall_to_pool("p1", NOW, "admin") == []  # an operator's own drain is his to cancel
    assert own.status is WorkerStatus.DRAINING

    empty = running_worker("p1")
    empty.retire_from_pool("p1", DesiredStatus.STOPPED, NOW, "pool")  # no session: drained at once
    assert empty.recall_to_pool("p1", NOW, "admin") == []
    assert empty.desired_status is DesiredStatus.STOPPED  # on its way down: the pool resumes it if it needs it
    with pytest.raises(ConflictError, match="not a member of pool p2"):
        empty.recall_to_pool("p2", NOW, "admin")
