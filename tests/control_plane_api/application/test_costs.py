"""The cost ledger's use cases on the MongoDB-wire server (the real repositories), with a clock the test moves:
a worker's intervals as its status changes (what opens, closes, is ignored), placements, the counters' settlement
and monotonicity, and the bound on what one report reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from control_plane_api.application import costs as costs_module
from control_plane_api.application.costs import CostService
from control_plane_api.domain import events as ev
from control_plane_api.domain.cost_ledger import BilledState, StopReason
from control_plane_api.domain.cost_report import Bucket, GroupBy
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.domain.system_settings import EbsSettings, WorkerTemplate
from control_plane_api.domain.worker import Worker
from control_plane_api.infrastructure.mongo_costs import HoldingRepository, IntervalRepository, TotalsRepository
from lcm_core.domain.enums import DesiredStatus, WorkerStatus
from lcm_core.domain.lablets import ResourceRequirements
from lcm_core.errors import InvalidError, NotFoundError

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
RATE = 3.6


class Templates:
    def __init__(self, *templates: WorkerTemplate) -> None:
        self._by_name = {t.name: t for t in templates}

    async def get(self, name: str) -> WorkerTemplate:
        if name not in self._by_name:
            raise NotFoundError(f"template {name} not found")
        return self._by_name[name]

    async def list(self) -> list[WorkerTemplate]:
        return list(self._by_name.values())


class Pools:
    async def get(self, pool_id: str) -> WorkerPool:
        raise NotFoundError(f"pool {pool_id} not found")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def ledger(mongo_server) -> AsyncIterator[tuple[CostService, IntervalRepository, Clock]]:
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://{mongo_server.address}", tz_aware=True)
    db = client[f"costs_{uuid.uuid4().hex[:8]}"]
    intervals, holdings = IntervalRepository(db["cost_intervals"]), HoldingRepository(db["cost_holdings"])
    await intervals.ensure_indexes()
    await holdings.ensure_indexes()
    template = WorkerTemplate(name="priced", cost_per_hour_usd=RATE, ebs=EbsSettings(volume_type="io1", size_gb=100,
                                                                                     iops=1000))
    clock = Clock()
    service = CostService(intervals, holdings, TotalsRepository(db["cost_totals"]), Templates(template), Pools(),
                          clock=clock, cache_seconds=0)
    try:
        yield service, intervals, clock
    finally:
        await client.close()


def worker(template: str | None = "priced") -> Worker:
    return Worker(id="w1", name="cml-1", aws_region="us-east-1", aws_instance_id="i-1", template_name=template,
                  status=WorkerStatus.PENDING, created_at=T0, updated_at=T0)


async def move(service: CostService, w: Worker, status: WorkerStatus, at_minutes: float, *,
               desired: DesiredStatus | None = None, reason: str | None = None, pause: str | None = None) -> None:
    w.status, w.status_changed_at, w.version = status, T0 + timedelta(minutes=at_minutes), w.version + 1
    w.desired_status, w.desired_reason, w.activity.pause_reason = desired, reason, pause
    await service.record_workers([(w, [DomainEvent(ev.WORKER_STATUS_UPDATED, {})])])


async def test_a_worker_runs_drains_stops_as_idle_and_is_terminated(ledger) -> None:
    service, intervals, _clock = ledger
    w = worker()
    await move(service, w, WorkerStatus.RUNNING, 0)
    await move(service, w, WorkerStatus.DRAINING, 5)  # still billed as running: nothing changes
    await move(service, w, WorkerStatus.STOPPING, 10, desired=DesiredStatus.STOPPED, reason="idle_timeout",
               pause="idle_timeout")
    await move(service, w, WorkerStatus.STOPPED, 11, desired=DesiredStatus.STOPPED, reason="idle_timeout",
               pause="idle_timeout")  # still stopped
    await move(service, w, WorkerStatus.TERMINATED, 30, desired=DesiredStatus.TERMINATED, reason="gone")
    found = await intervals.overlapping(T0 - timedelta(days=1), T0 + timedelta(days=1), None, None, 100)
    assert [(i.state, i.start, i.end) for i in found] == [
        (BilledState.RUNNING, T0, T0 + timedelta(minutes=10)),
        (BilledState.STOPPED, T0 + timedelta(minutes=10), T0 + timedelta(minutes=30))]
    running, stopped = found
    assert (running.priced, running.cost_per_hour_usd) == (True, RATE)
    assert stopped.ebs_cost_per_hour_usd == pytest.approx((100 * 0.125 + 1000 * 0.065) / 730)
    assert (stopped.stop_reason, stopped.terminated_reason) == (StopReason.IDLE_PAUSE, StopReason.OPERATOR)
    assert await intervals.open_for("w1") is None  # terminated: none open


async def test_a_change_recorded_late_is_ignored_and_an_unknown_template_is_unpriced(ledger) -> None:
    service, intervals, _clock = ledger
    w = worker(template="deleted")
    await move(service, w, WorkerStatus.RUNNING, 0)
    late = w.model_copy(deep=True)
    late.version, late.status = 0, WorkerStatus.STOPPED  # an older version's status, recorded after
    await service.record_workers([(late, [DomainEvent(ev.WORKER_STATUS_UPDATED, {})])])
    current = await intervals.open_for("w1")
    assert current is not None
    assert (current.state, current.priced, current.cost_per_hour_usd) == (BilledState.RUNNING, False, 0)
    await service.record_workers([(w, [DomainEvent(ev.WORKER_METRICS_UPDATED, {})])])  # not a status event
    assert len(await intervals.overlapping(T0, T0 + timedelta(hours=1), None, None, 10)) == 1


async def test_a_worker_found_in_ec2_is_priced_like_the_template_of_its_instance_type(ledger) -> None:
    service, intervals, _clock = ledger
    found = worker(template=None)
    found.instance_type = "m5zn.metal"  # the priced template's type
    await move(service, found, WorkerStatus.RUNNING, 0)
    other = worker(template=None).model_copy(update={"id": "w2", "instance_type": "c5.metal"})
    await move(service, other, WorkerStatus.RUNNING, 0)
    priced, unpriced = await intervals.open_for("w1"), await intervals.open_for("w2")
    assert priced is not None
    assert unpriced is not None
    assert (priced.priced, priced.cost_per_hour_usd, priced.template_name) == (True, RATE, None)
    assert (unpriced.priced, unpriced.cost_per_hour_usd) == (False, 0)


async def test_a_placement_holds_the_worker_until_its_capacity_is_released(ledger) -> None:
    service, _intervals, clock = ledger
    w = worker()
    w.capacity.declared.cpu_cores = 48
    await move(service, w, WorkerStatus.RUNNING, 0)
    session = LabletSession(id="s1", definition_id="d1", definition_version=1, definition_name="ccna-basic",
                            owner="student", timeslot_start=T0, timeslot_end=T0 + timedelta(hours=2),
                            resource_requirements=ResourceRequirements(cpu_cores=12), lab_track="ccna",
                            worker_id="w1", created_at=T0, updated_at=T0)

    def changed(old: str, new: str, at_minutes: float) -> list[DomainEvent]:
        session.status_changed_at = T0 + timedelta(minutes=at_minutes)
        return [DomainEvent(ev.LABLET_SESSION_STATUS_CHANGED, {"old_status": old, "new_status": new})]

    await service.record_session(session, changed("pending", "scheduled", 0))
    await service.record_session(session, changed("scheduled", "instantiating", 10))  # still held
    await service.record_session(session, changed("instantiating", "terminated", 30))
    clock.now = T0 + timedelta(hours=1)
    report = await service.report(T0, T0 + timedelta(hours=1), GroupBy.TRACK, Bucket.HOUR)
    groups = {g.key: g.running_usd for g in report.groups}
    assert groups == pytest.approx({"ccna": RATE * 12 / 48 / 2, "idle": RATE - RATE * 12 / 48 / 2})


async def test_the_counters_settle_closed_intervals_once_and_never_decrease(ledger) -> None:
    service, intervals, clock = ledger
    w = worker()
    await move(service, w, WorkerStatus.RUNNING, 0)
    clock.now = T0 + timedelta(minutes=30)
    first = (await service.counters())["none"]
    assert first.running_usd == pytest.approx(RATE / 2)
    await move(service, w, WorkerStatus.STOPPED, 60, desired=DesiredStatus.STOPPED, reason="retired by pool p")
    clock.now = T0 + timedelta(minutes=90)
    second = (await service.counters())["none"]
    assert second.running_usd == pytest.approx(RATE)  # the closed hour, settled
    assert second.savings_scale_down_usd > 0
    assert [i.settled for i in await intervals.unsettled(10)] == [False]  # only the open stopped one
    third = (await service.counters())["none"]
    assert third.running_usd == pytest.approx(RATE)  # settled once, not twice
    assert third.stopped_usd >= second.stopped_usd


async def test_a_report_reads_a_bounded_number_of_records(ledger, monkeypatch) -> None:
    service, _intervals, clock = ledger
    w = worker()
    for minute in range(0, 8, 2):
        await move(service, w, WorkerStatus.RUNNING, minute)
        await move(service, w, WorkerStatus.STOPPED, minute + 1, desired=DesiredStatus.STOPPED)
    clock.now = T0 + timedelta(hours=1)
    monkeypatch.setattr(costs_module, "MAX_REPORT_RECORDS", 7)
    with pytest.raises(InvalidError, match="more than 7"):
        await service.report(T0, T0 + timedelta(hours=1), GroupBy.POOL, Bucket.HOUR)
    monkeypatch.setattr(costs_module, "MAX_REPORT_RECORDS", 8)
    report = await service.report(T0, T0 + timedelta(hours=1), GroupBy.POOL, Bucket.HOUR)
    assert report.intervals_read == 8
    monkeypatch.setattr(costs_module, "OFF_LOOP_INTERVALS", 0)  # the same sums, away from the event loop
    away = await service.report(T0, T0 + timedelta(hours=1), GroupBy.POOL, Bucket.HOUR)
    assert away.totals() == report.totals()
    assert away.totals()["running_usd"] == round(4 * RATE / 60, 4)  # four starts of a minute each
    with pytest.raises(InvalidError, match="to must be after from"):
        await service.report(T0, T0, GroupBy.POOL, Bucket.HOUR)


STATUS = [DomainEvent(ev.WORKER_STATUS_UPDATED, {})]


async def test_changes_recorded_out_of_order_leave_the_ledger_in_the_last_state(ledger) -> None:
    """The worker runs (v1), stops (v2 at 10 min) and runs again (v3 at 11 min). The ledger is written after
    the commit (after an awaited publish), so v3 may be recorded before v2. The worker runs: the open interval
    must be a running one (else its running hours are billed at the EBS price until its next status change)."""
    service, intervals, clock = ledger
    w = worker()
    await move(service, w, WorkerStatus.RUNNING, 0)
    stopped = w.model_copy(deep=True)
    stopped.status, stopped.status_changed_at, stopped.version = WorkerStatus.STOPPED, T0 + timedelta(minutes=10), 2
    stopped.desired_status = DesiredStatus.STOPPED
    running = w.model_copy(deep=True)
    running.status, running.status_changed_at, running.version = WorkerStatus.RUNNING, T0 + timedelta(minutes=11), 3
    await service.record_workers([(running, STATUS)])  # v3 first
    await service.record_workers([(stopped, STATUS)])  # then v2, late
    current = await intervals.open_for("w1")
    clock.now = T0 + timedelta(hours=5)
    report = await service.report(T0, T0 + timedelta(hours=5), GroupBy.WORKER, Bucket.HOUR)
    assert current is not None
    assert current.state is BilledState.RUNNING, (
        f"open interval {current.state if current else None}; billed running "
        f"{report.totals()['running_usd']} USD of {RATE * (5 - 1 / 60):.4f} for a worker running all but 1 min")


async def test_two_changes_recorded_at_once_open_one_interval(ledger) -> None:
    """Two commits of the same worker recorded concurrently (two requests, or two replicas): RUNNING (v2) and
    DRAINING (v3, still billed running). The ledger must hold one open interval, not bill the worker twice."""
    service, intervals, clock = ledger
    first = worker()
    first.status, first.status_changed_at, first.version = WorkerStatus.RUNNING, T0, 2
    second = first.model_copy(deep=True)
    second.status, second.status_changed_at, second.version = WorkerStatus.DRAINING, T0 + timedelta(seconds=1), 3
    templates = service._templates  # the test's own fake
    real_get = templates.get

    async def read_over_the_network(name: str):  # in production the template is a MongoDB read
        await asyncio.sleep(0.02)
        return await real_get(name)

    templates.get = read_over_the_network
    await asyncio.gather(service.record_workers([(first, STATUS)]), service.record_workers([(second, STATUS)]))
    clock.now = T0 + timedelta(hours=1)
    opened = [i for i in await intervals.overlapping(T0, clock.now, None, None, 10) if i.end is None]
    report = await service.report(T0, clock.now, GroupBy.WORKER, Bucket.HOUR)
    stop = second.model_copy(deep=True)
    stop.status, stop.status_changed_at, stop.version = WorkerStatus.TERMINATED, T0 + timedelta(hours=1), 4
    await service.record_workers([(stop, STATUS)])  # the worker is gone: nothing may stay open
    still_open = [i.id for i in await intervals.overlapping(T0, clock.now, None, None, 10) if i.end is None]
    assert (len(opened), still_open) == (1, []), (
        f"{len(opened)} open intervals: 1 h billed {report.totals()['running_usd']} USD (rate {RATE}/h); "
        f"after termination still open (billed for ever): {still_open}")
