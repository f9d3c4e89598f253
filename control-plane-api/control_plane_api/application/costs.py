"""The cost ledger's use cases (docs/costs.md): recording a worker's billed intervals and a session's holding
of its worker as their statuses change, the cost report of a window, and the totals behind the counters.

Recording is called once per committed change (`WorkerService._after_commit_many`, `SessionService._after_commit`)
and never fails the change it follows: a ledger that cannot be written is logged, the change stands. The
report reads the intervals of its window through one indexed range query, then sums them in the domain
(`cost_report`), in a thread when there are many.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from control_plane_api.application.lablet_definitions import InThread, OffLoop
from control_plane_api.domain import events as ev
from control_plane_api.domain.cost_ledger import (
    SCALE_DOWN_SAVINGS_HORIZON,
    BilledState,
    HoldingInterval,
    WorkerInterval,
    billed_state,
    ebs_cost_per_hour,
    is_gone,
    stop_reason,
)
from control_plane_api.domain.cost_report import (
    BUCKET_SECONDS,
    Amounts,
    Bucket,
    CostReport,
    GroupBy,
    Window,
    cost_report,
    lifetime_amounts,
    pool_label,
    window_problem,
)
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.domain.system_settings import WorkerTemplate
from control_plane_api.domain.worker import Worker
from lcm_core.domain.lablets import LabletSessionStatus, releases_capacity
from lcm_core.errors import InvalidError, NotFoundError

logger = logging.getLogger(__name__)

#: The most records (worker intervals and session placements together) one report reads: beyond, 422. Summing
#: 100,000 takes a few seconds on the development machine (docs/costs.md).
MAX_REPORT_RECORDS = 100_000
#: Unsettled intervals a scrape reads at most (normally the open ones: one per worker not terminated).
MAX_UNSETTLED = 100_000
#: Reports over more records than this are summed away from the event loop (`off_loop`).
OFF_LOOP_INTERVALS = 5_000
#: How long the counters' totals are reused between scrapes.
COUNTERS_CACHE_SECONDS = 5.0
#: Worker events after which its billed state may have changed.
_STATUS_EVENTS = frozenset({ev.WORKER_STATUS_UPDATED, ev.WORKER_IMPORTED, ev.WORKER_TERMINATED})


class IntervalStore(Protocol):
    async def open_for(self, worker_id: str, /) -> WorkerInterval | None: ...
    async def insert(self, interval: WorkerInterval, /) -> bool:
        """False when the same interval was inserted already (another replica recorded the same change)."""
        ...
    async def close(self, interval: WorkerInterval, /) -> bool:
        """Store `interval` (now with its end) if it is still open; False when another write closed it."""
        ...
    async def advance(self, interval_id: str, worker_version: int, /) -> None:
        """Note that the worker's version `worker_version` found the open interval's state unchanged."""
        ...
    async def overlapping(self, start: datetime, end: datetime, pool_id: str | None, worker_id: str | None,
                          limit: int, /) -> list[WorkerInterval]:
        """The intervals with start < end and (end is None or end >= start), oldest first, at most `limit`."""
        ...
    async def unsettled(self, limit: int, /) -> list[WorkerInterval]: ...
    async def settle(self, interval: WorkerInterval, /) -> bool:
        """Mark it settled; False when another replica did first (that one adds it to the totals)."""
        ...


class HoldingStore(Protocol):
    async def insert(self, holding: HoldingInterval, /) -> None: ...
    async def close(self, session_id: str, at: datetime, /) -> None: ...
    async def overlapping(self, start: datetime, end: datetime, worker_ids: Sequence[str],
                          limit: int, /) -> list[HoldingInterval]: ...


class TotalsStore(Protocol):
    async def add(self, label: str, amounts: Amounts, /) -> None: ...
    async def all(self) -> dict[str, Amounts]: ...


class Templates(Protocol):
    async def get(self, name: str, /) -> WorkerTemplate: ...

    async def list(self) -> list[WorkerTemplate]: ...


class Pools(Protocol):
    async def get(self, pool_id: str, /) -> WorkerPool: ...


class WorkerCosts(Protocol):
    """What `WorkerService` calls after a commit (the ledger, or nothing)."""

    async def record_workers(self, committed: Sequence[tuple[Worker, list[DomainEvent]]], /) -> None: ...


class SessionCosts(Protocol):
    """What `SessionService` calls after a commit."""

    async def record_session(self, session: LabletSession, events: Sequence[DomainEvent], /) -> None: ...


class CostService:
    def __init__(self, intervals: IntervalStore, holdings: HoldingStore, totals: TotalsStore,
                 templates: Templates, pools: Pools, clock: Callable[[], datetime] = utcnow,
                 off_loop: OffLoop | None = None, cache_seconds: float = COUNTERS_CACHE_SECONDS) -> None:
        self._intervals = intervals
        self._cache_seconds = cache_seconds
        self._holdings = holdings
        self._totals = totals
        self._templates = templates
        self._pools = pools
        self._clock = clock
        self._off_loop: OffLoop = off_loop or InThread()
        self._counters: tuple[float, dict[str, Amounts]] | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._exported: dict[str, Amounts] = {}

    # ----------------------------------------------------------------- recording

    async def record_workers(self, committed: Sequence[tuple[Worker, list[DomainEvent]]]) -> None:
        for worker, events in committed:
            if any(e.type in _STATUS_EVENTS for e in events):
                try:
                    await self.record_worker(worker)
                except Exception:  # the ledger must never undo or fail the status change it follows
                    logger.exception("cost ledger: the status change of worker %s was not recorded", worker.id)

    async def record_worker(self, worker: Worker) -> None:
        """Close the worker's open interval and open the one of its new billed state (none once it is gone or
        while nothing is billed). A change older than the last one recorded (recorded late) is ignored. One
        worker's changes are recorded one at a time in this process (two commits recorded at once would both
        find no open interval and open two)."""
        lock = self._locks.get(worker.id)
        if lock is None:
            lock = self._locks[worker.id] = asyncio.Lock()
        async with lock:
            await self._record_worker(worker)

    async def _record_worker(self, worker: Worker) -> None:
        state = billed_state(worker.status)
        at = worker.status_changed_at or self._clock()
        current = await self._intervals.open_for(worker.id)
        if current is not None:
            if current.worker_version >= worker.version:
                return
            if current.state is state:
                await self._intervals.advance(current.id, worker.version)
                return
            closed = current.model_copy(update={"end": max(at, current.start)})
            if is_gone(worker.status):
                closed.terminated_reason = stop_reason(worker.desired_status, worker.desired_reason,
                                                       worker.activity.pause_reason)
            if not await self._intervals.close(closed):
                return  # another replica recorded this change
        if state is None:
            return
        await self._intervals.insert(await self._opened(worker, state, at))

    async def _opened(self, worker: Worker, state: BilledState, at: datetime) -> WorkerInterval:
        template = await self._price_of(worker)
        priced = template is not None and template.cost_per_hour_usd is not None
        pool_name = None
        if worker.pool_id is not None:
            try:
                pool_name = (await self._pools.get(worker.pool_id)).name
            except NotFoundError:
                pool_name = None
        declared = worker.capacity.declared
        return WorkerInterval(
            id=f"{worker.id}:{at.isoformat()}", worker_id=worker.id, worker_name=worker.name,
            pool_id=worker.pool_id, pool_name=pool_name, template_name=worker.template_name, state=state,
            start=at, priced=priced,
            cost_per_hour_usd=float(template.cost_per_hour_usd or 0) if template is not None and priced else 0.0,
            ebs_cost_per_hour_usd=ebs_cost_per_hour(template.ebs) if template is not None and priced else 0.0,
            stop_reason=stop_reason(worker.desired_status, worker.desired_reason, worker.activity.pause_reason)
            if state is BilledState.STOPPED else None,
            declared_cpu_cores=float(declared.cpu_cores), declared_memory_gb=float(declared.memory_gb),
            worker_version=worker.version)

    async def _price_of(self, worker: Worker) -> WorkerTemplate | None:
        """The template a worker is priced at: its own when priced; else (a worker found in EC2, or one of an
        unpriced template) the first priced template, by name, of its instance type, so that the hosts an
        operator did not launch through LCM are not counted as free."""
        own = await self._template(worker.template_name)
        if own is not None and own.cost_per_hour_usd is not None:
            return own
        if worker.instance_type:
            same = sorted((t for t in await self._templates.list()
                           if t.instance_type == worker.instance_type and t.cost_per_hour_usd is not None),
                          key=lambda t: t.name)
            if same:
                return same[0]
        return own

    async def _template(self, name: str | None) -> WorkerTemplate | None:
        if name is None:
            return None
        try:
            return await self._templates.get(name)
        except NotFoundError:
            return None

    async def record_session(self, session: LabletSession, events: Sequence[DomainEvent]) -> None:
        """A session placed on a worker starts holding it; one that gives its capacity back stops."""
        try:
            for event in events:
                if event.type != ev.LABLET_SESSION_STATUS_CHANGED:
                    continue
                old, new = event.data.get("old_status"), event.data.get("new_status")
                at = session.status_changed_at or self._clock()
                if new == LabletSessionStatus.SCHEDULED and session.worker_id is not None:
                    await self._holdings.insert(HoldingInterval(
                        id=f"{session.id}:{at.isoformat()}", session_id=session.id, worker_id=session.worker_id,
                        lab_track=session.lab_track, definition_id=session.definition_id,
                        definition_name=session.definition_name,
                        cpu_cores=float(session.resource_requirements.cpu_cores),
                        memory_gb=float(session.resource_requirements.memory_gb), start=at))
                elif old is not None and new is not None and releases_capacity(old, new):
                    await self._holdings.close(session.id, at)
        except Exception:  # like the workers': the session's change stands
            logger.exception("cost ledger: the placement of session %s was not recorded", session.id)

    # ----------------------------------------------------------------- reads

    async def report(self, start: datetime, end: datetime, group_by: GroupBy, bucket: Bucket,
                     pool_id: str | None = None, worker_id: str | None = None) -> CostReport:
        problem = window_problem(start, end, bucket)
        if problem is not None:
            raise InvalidError(problem)
        now = self._clock()
        # A day more before the window: the savings of a scale-down termination run on after the interval.
        too_many = InvalidError(f"the window holds more than {MAX_REPORT_RECORDS} intervals and session "
                                "placements: shorten it, use a filter (pool_id, worker_id)")
        read = await self._intervals.overlapping(start - SCALE_DOWN_SAVINGS_HORIZON, end, pool_id, worker_id,
                                                 MAX_REPORT_RECORDS + 1)
        if len(read) > MAX_REPORT_RECORDS:
            raise too_many
        intervals = [i for i in read if i.until >= start or i.post_termination_savings]
        workers = sorted({i.worker_id for i in intervals if i.state is BilledState.RUNNING})
        room = MAX_REPORT_RECORDS - len(intervals)
        holdings = await self._holdings.overlapping(start, end, workers, room + 1) if workers else []
        if len(holdings) > room:
            raise too_many
        window = Window(start, end, BUCKET_SECONDS[bucket])
        if len(intervals) + len(holdings) > OFF_LOOP_INTERVALS:
            return await self._off_loop.run(cost_report, intervals, holdings, window, group_by, now)
        return cost_report(intervals, holdings, window, group_by, now)

    async def counters(self) -> dict[str, Amounts]:
        """Cost and savings since the ledger began, by pool label: the settled totals plus what the intervals
        not settled yet have counted so far. Reused for a few seconds; never lower than what this process
        showed before (a settlement by another replica is briefly in neither part)."""
        if self._counters is not None and time.monotonic() - self._counters[0] < self._cache_seconds:
            return self._counters[1]
        now = self._clock()
        live: dict[str, Amounts] = {}
        for interval in await self._intervals.unsettled(MAX_UNSETTLED):
            final = interval.final_at()
            if final is not None and final <= now:
                if await self._intervals.settle(interval):
                    await self._totals.add(pool_label(interval), lifetime_amounts(interval, now))
                continue
            live.setdefault(pool_label(interval), Amounts()).add(lifetime_amounts(interval, now))
        found = await self._totals.all()
        for label, amounts in live.items():
            found.setdefault(label, Amounts()).add(amounts)
        for label, amounts in found.items():
            self._exported[label] = _at_least(amounts, self._exported.get(label))
        self._counters = (time.monotonic(), dict(self._exported))
        return self._counters[1]


def _at_least(amounts: Amounts, before: Amounts | None) -> Amounts:
    if before is None:
        return amounts
    return Amounts(*(max(a, b) for a, b in zip(_values(amounts), _values(before), strict=True)))


def _values(amounts: Amounts) -> Iterable[float]:
    return (amounts.running_usd, amounts.stopped_usd, amounts.savings_idle_pause_usd, amounts.savings_scale_down_usd)
