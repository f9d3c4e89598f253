"""The worker use cases over in-memory fakes of their ports: no server, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.application.workers import WorkerService
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.reports import DiscoveredInstance, StatusReport
from control_plane_api.domain.system_settings import IdleSettings, SystemSettings
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_state import Reservation
from lcm_core.domain.cml_snapshot import CmlTelemetrySnapshot
from lcm_core.domain.enums import DesiredStatus, HealthStatus, WorkerStatus
from lcm_core.domain.workers import CloudWatchSample, Ec2Checks, WorkerMetricsReport
from lcm_core.errors import ConflictError, FencedError
from tests.control_plane_api.application.fakes import (
    FixedSettings,
    InMemoryHistory,
    InMemoryTelemetry,
    InMemoryWorkerKeys,
    InMemoryWorkerStore,
    RecordingPublisher,
    RecordingWebhooks,
)

START = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
LEADER = LeaderCaller("worker-controller", 7)


class Rig:
    def __init__(self, settings: SystemSettings | None = None) -> None:
        self.now = START
        self.store = InMemoryWorkerStore()
        self.telemetry = InMemoryTelemetry()
        self.history = InMemoryHistory()
        self.published = RecordingPublisher()
        self.keys = InMemoryWorkerKeys()
        self.service = WorkerService(self.store, FixedSettings(settings), self.published,  # type: ignore[arg-type]
                                     self.keys, RecordingWebhooks(), templates=None,  # type: ignore[arg-type]
                                     telemetry=self.telemetry, history=self.history, clock=lambda: self.now)

    async def running(self, count: int = 1) -> list[str]:
        found = [DiscoveredInstance(aws_instance_id=f"i-{n:017x}", aws_region="us-east-1", state="running",
                                    instance_type="m5zn.metal") for n in range(1, count + 1)]
        result = await self.service.bulk_import(found, by="discovery", leader=LEADER)
        return result.created


async def hold_a_session(rig: Rig, worker_id: str) -> None:
    """A lablet session's reservation on the worker (what the capacity ledger writes)."""
    def reserve(worker: Worker, _now: datetime) -> list[DomainEvent]:
        worker.capacity.reservations["s1"] = Reservation()
        return []

    await rig.service.mutate(worker_id, reserve)


def steady(worker_id: str, at: datetime, cpu: float = 20.0, running_nodes: int = 1) -> WorkerMetricsReport:
    return WorkerMetricsReport(worker_id=worker_id, collected_at=at,
                               ec2=Ec2Checks(state="running", system_status="ok", instance_status="ok"),
                               cml=CmlTelemetrySnapshot(ready=True, health_valid=True, all_cpu_percent=cpu,
                                                        all_memory_total=100, all_memory_used=30,
                                                        running_nodes=running_nodes, labs_count=1))


async def test_a_steady_metrics_cycle_writes_telemetry_and_no_worker() -> None:
    rig = Rig()
    ids = await rig.running(3)
    first = await rig.service.update_metrics_batch([steady(w, START) for w in ids], "m", LEADER)
    assert (sorted(first.updated), first.retried) == (sorted(ids), 0)
    saves = rig.store.saves  # the first report turned the workers healthy and their CML available
    rig.now = START + timedelta(minutes=1)
    second = await rig.service.update_metrics_batch([steady(w, rig.now, cpu=35.0) for w in ids], "m", LEADER)
    assert (second.retried, second.auto_paused) == (0, [])
    assert rig.store.saves == saves  # nothing the workers decide from changed: no worker written
    assert rig.telemetry.writes == 6
    stored = rig.telemetry.items[ids[0]]
    assert (stored.utilisation.cpu_percent, stored.utilisation.memory_percent, stored.version) == (35.0, 30.0, 2)
    assert rig.store.stored(ids[0]).health_status is HealthStatus.HEALTHY
    assert len(rig.history.samples) == 6
    metrics_events = [e for e in rig.published.events if e.type == "worker.metrics.updated"]
    assert metrics_events[-1].data["summary"]["cpu_percent"] == 35.0  # the row, with its telemetry columns


async def test_an_idle_worker_is_paused_inside_the_batch_and_its_desired_state_projected() -> None:
    rig = Rig(SystemSettings(idle=IdleSettings(threshold_minutes=10)))
    [worker_id] = await rig.running()
    await rig.service.update_metrics_batch([steady(worker_id, START, running_nodes=0)], "m", LEADER)
    rig.now = START + timedelta(minutes=11)
    outcome = await rig.service.update_metrics_batch([steady(worker_id, rig.now, running_nodes=0)], "m", LEADER)
    assert outcome.auto_paused == [worker_id]
    assert rig.store.stored(worker_id).desired_status is DesiredStatus.STOPPED
    assert rig.keys.values[f"/lcm/workers/{worker_id}/desired_state"]["desired_status"] == "stopped"
    assert rig.telemetry.items[worker_id].idle.eligible_for_auto_pause is True


async def test_a_session_keeps_its_worker_awake() -> None:
    rig = Rig(SystemSettings(idle=IdleSettings(threshold_minutes=10)))
    [worker_id] = await rig.running()
    await hold_a_session(rig, worker_id)
    rig.now = START + timedelta(hours=2)
    outcome = await rig.service.update_metrics_batch([steady(worker_id, rig.now, running_nodes=0)], "m", LEADER)
    assert outcome.auto_paused == []
    assert rig.telemetry.items[worker_id].idle.verdict == "holds 1 lablet session(s)"


async def test_two_reports_of_one_worker_at_once_both_land() -> None:
    """A refresh's report is stored while the cycle's is being applied: the cycle's is applied again on top,
    so neither the refresh's CloudWatch sample nor the cycle's EC2 checks are lost."""
    rig = Rig()
    [worker_id] = await rig.running()
    await rig.service.update_metrics_batch([steady(worker_id, START)], "m", LEADER)
    cycle = WorkerMetricsReport(worker_id=worker_id, collected_at=START + timedelta(seconds=30),
                                ec2=Ec2Checks(state="running", system_status="impaired", instance_status="ok"))
    refresh = WorkerMetricsReport(worker_id=worker_id, collected_at=START + timedelta(seconds=20),
                                  cloudwatch=CloudWatchSample(cpu_utilization=55.0))

    async def refresh_first() -> None:
        await rig.service.update_metrics_batch([refresh], "refresh", LEADER)

    rig.telemetry.before_store = refresh_first
    outcome = await rig.service.update_metrics_batch([cycle], "m", LEADER)
    assert outcome.retried == 1
    stored = rig.telemetry.items[worker_id]
    assert stored.ec2 is not None
    assert stored.ec2.system_status == "impaired"
    assert stored.cloudwatch is not None
    assert stored.cloudwatch.cpu_utilization == 55.0
    assert rig.store.stored(worker_id).health_status is HealthStatus.CRITICAL


async def test_an_older_report_rolls_no_source_back() -> None:
    rig = Rig()
    [worker_id] = await rig.running()
    await rig.service.update_metrics_batch([steady(worker_id, START + timedelta(minutes=1), cpu=40.0)], "m",
                                           LEADER)
    late = steady(worker_id, START, cpu=90.0)  # collected before the one already applied
    await rig.service.update_metrics_batch([late], "m", LEADER)
    stored = rig.telemetry.items[worker_id]
    assert stored.cml is not None
    assert (stored.cml.all_cpu_percent, stored.collected_at) == (40.0, START + timedelta(minutes=1))


async def test_imports_are_idempotent_and_a_status_report_observed_before_the_last_change_is_ignored() -> None:
    rig = Rig()
    [worker_id] = await rig.running()
    assert await rig.running() == []  # the same instance again: nothing created
    await rig.service.request_desired_status(worker_id, DesiredStatus.STOPPED, by="op", reason="maintenance")
    stale = StatusReport(ec2_state="running", observed_at=START - timedelta(seconds=1))
    assert (await rig.service.update_status(worker_id, stale, by="wc", leader=LEADER)).status is WorkerStatus.RUNNING
    seen = StatusReport(ec2_state="stopped", observed_at=START + timedelta(seconds=1))
    assert (await rig.service.update_status(worker_id, seen, by="wc", leader=LEADER)).status is WorkerStatus.STOPPED


async def test_stop_is_refused_while_a_session_is_held_and_a_deposed_leader_is_fenced() -> None:
    rig = Rig()
    [worker_id] = await rig.running()
    await hold_a_session(rig, worker_id)
    with pytest.raises(ConflictError, match="s1"):
        await rig.service.request_desired_status(worker_id, DesiredStatus.STOPPED, by="op")
    newer = LeaderCaller("worker-controller", 9)
    await rig.service.update_status(worker_id, StatusReport(ec2_state="stopping"), by="wc", leader=newer)
    with pytest.raises(FencedError):  # the leader before it reports what it saw: refused by the store
        await rig.service.update_status(worker_id, StatusReport(ec2_state="running"), by="wc", leader=LEADER)
    assert rig.store.stored(worker_id).status is WorkerStatus.STOPPING
