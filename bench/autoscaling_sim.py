"""The simulation of bench/autoscaling.py: a control plane, EC2 and CML on a virtual clock, driven by the
controllers' own code.

`Simulation` plays the control plane (pools, workers, sessions) and, with `autoscaling_fleet.World`, the world
under it (EC2 launches, starts and stops; CML boots; licence registrations), with every duration drawn by
`autoscaling_workload.Durations`.
The decisions are the controllers': the worker-controller's `PoolAutoscaler` (which calls `plan_pool`) reads
each pool through `pool_work` and reports through `report_evaluation`, which the control plane's own
`WorkerPool.apply_evaluation` records before the simulation carries it out; the lablet-controller's
`SchedulingPass` (which drives a `Scheduler` with the track pools) reads the sessions, workers and pools and
places through `schedule`. Those four methods are the gateways' (`PoolGateway`, `SchedulingGateway`).

Loops, as the controllers run them: the autoscaler every `WORKER_AUTOSCALER_INTERVAL` (30 s) per pool, at
once after a booking and after a session starts waiting for a pool (the CPA's `capacity_request` key), and
again after `BUSY_REQUEUE_SECONDS` while workers come and go; the scheduling pass every
`LABLET_SCHEDULING_INTERVAL` (10 s) while sessions are due (a pass with nothing due does nothing).
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from autoscaling_fleet import REGION, TEMPLATE_CAPACITY, WORLD, SimWorker, Stage, World
from autoscaling_state import AlwaysLeading, Sample, SessionState, SimPool, requirements_of
from autoscaling_workload import (
    COST_PER_HOUR_USD,
    LAB_TYPES,
    TEMPLATE_NAME,
    TERM_START,
    BookedSession,
    Durations,
    LabType,
)

from control_plane_api.domain.pool import WorkerPool
from lablet_controller.application.scheduling import SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lcm_core.domain.enums import DesiredStatus
from lcm_core.domain.lablets import (
    DefinitionWorkView,
    LabletDefinitionStatus,
    LabletSessionStatus,
    PortSpec,
    SchedulingDecision,
    SessionWorkView,
)
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pool_forecast import Booking, lead_time
from lcm_core.domain.pools import PoolEvaluation, PoolSpec, PoolView, PoolWork, ScaleDownAction, ScalingConfig
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import NotFoundError
from worker_controller.application.autoscaler import PoolAutoscaler, plan_pool

AUTOSCALER_INTERVAL = 30.0
SCHEDULING_INTERVAL = 10.0
SCHEDULE_AHEAD = 900.0
"""`LABLET_SCHEDULE_AHEAD`: a pending session is placed once its timeslot starts within it."""
SAMPLE_EVERY = 300.0
PORTS_PER_WORKER = 3000
#: Events at one instant run in this order: the world, then bookings, then the controllers.
SESSIONS, BOOKINGS, SCHEDULING, AUTOSCALING, SAMPLING = range(WORLD + 1, WORLD + 6)


class Simulation(World):
    """One policy over one term (see the module docstring). `autoscaled` False: no autoscaler runs (the
    static fleet); `static_workers` per lab track are then serving from the start."""

    def __init__(self, bookings: list[BookedSession], scaling: dict[str, ScalingConfig], *, days: int, seed: int,
                 autoscaled: bool, static_workers: dict[str, int] | None = None,
                 check_bookings_ignored: bool = False, schedule_ahead: float = SCHEDULE_AHEAD) -> None:
        self.end = days * 86400.0
        self.now = 0.0
        self.bookings = bookings
        self.autoscaled = autoscaled
        self.ahead = schedule_ahead
        self.check_bookings_ignored = check_bookings_ignored
        self.bookings_check: tuple[int, int] | None = (0, 0) if check_bookings_ignored else None
        """(plans that changed, plans checked) when the next 2 h of bookings are given to `plan_pool`."""
        self.durations = Durations(seed)
        self._events: list[tuple[float, int, int, Callable[[], Awaitable[None] | None]]] = []
        self._seq = itertools.count()
        self._pass_at: set[float] = set()
        self._eval_at: set[tuple[float, str]] = set()
        self.by_pool: dict[str, SimPool] = {}
        self.by_worker: dict[str, SimWorker] = {}
        self.by_session: dict[str, SessionState] = {}
        self.pending: dict[str, SessionState] = {}
        self.samples: list[Sample] = []
        self.definitions: dict[str, DefinitionWorkView] = {}
        for lab in LAB_TYPES:
            if lab.track in scaling:
                self._add_pool(lab, scaling[lab.track], (static_workers or {}).get(lab.track, 0))
        self.autoscaler = PoolAutoscaler(self, AlwaysLeading())
        self.scheduling = SchedulingPass(self, Scheduler("best_fit", rng=random.Random(seed)),
                                         port_capacity=PORTS_PER_WORKER, schedule_ahead_seconds=schedule_ahead,
                                         clock=lambda: self.moment(self.now))

    @staticmethod
    def moment(seconds: float) -> datetime:
        return TERM_START + timedelta(seconds=seconds)

    def _add_pool(self, lab: LabType, scaling: ScalingConfig, static: int) -> None:
        spec = PoolSpec(name=lab.track, lab_track=lab.track, template_name=TEMPLATE_NAME, regions=[REGION],
                        scaling=scaling)
        record, _ = WorkerPool.created(spec, self.moment(0), "bench")
        record.id = f"pool-{lab.track}"
        pool = self.by_pool[record.id] = SimPool(lab, record)
        self.definitions[lab.definition] = DefinitionWorkView(
            id=lab.definition, name=lab.definition, version=1, status=LabletDefinitionStatus.ACTIVE,
            lab_topology_yaml="lab: {}", resource_requirements=requirements_of(lab), lab_track=lab.track,
            port_template=[PortSpec(name=f"console{n}", node_label=f"r{n}", kind="serial", template_port=5000 + n)
                           for n in range(lab.ports)], max_duration_minutes=600)
        for n in range(static):  # running and licensed before the term starts
            worker = self._new_worker(pool, f"{lab.track}-static-{n:03d}", f"{lab.track}-static-{n:03d}",
                                      Stage.SERVING)
            worker.bill_start(0.0)

    def _new_worker(self, pool: SimPool, worker_id: str, name: str, stage: Stage) -> SimWorker:
        worker = SimWorker(id=worker_id, name=name, pool_id=pool.record.id, track=pool.lab.track, stage=stage,
                           asked_at=self.now)
        self.by_worker[worker.id] = worker
        pool.members.append(worker)
        return worker

    # ---- the event queue

    def at(self, when: float, order: int, action: Callable[[], Awaitable[None] | None]) -> None:
        heapq.heappush(self._events, (when, order, next(self._seq), action))

    async def run(self) -> None:
        for booked in self.bookings:
            self.at(booked.booked_at, BOOKINGS, functools.partial(self._book, booked))
        for pool_id in self.by_pool if self.autoscaled else ():
            for k in range(int(self.end // AUTOSCALER_INTERVAL) + 1):
                self._evaluate_at(k * AUTOSCALER_INTERVAL, pool_id)
        for k in range(int(self.end // SAMPLE_EVERY) + 1):
            self.at(k * SAMPLE_EVERY, SAMPLING, self._sample)
        while self._events:
            when, _, _, action = heapq.heappop(self._events)
            if when > self.end:
                break
            self.now = when
            result = action()
            if result is not None:
                await result
        for worker in self.by_worker.values():
            worker.bill_stop(self.end)
            worker.bill_stopped_end(self.end)

    def _evaluate_at(self, when: float, pool_id: str) -> None:
        if self.autoscaled and (when, pool_id) not in self._eval_at:
            self._eval_at.add((when, pool_id))
            self.at(when, AUTOSCALING, lambda: self._evaluate(when, pool_id))

    async def _evaluate(self, when: float, pool_id: str) -> None:
        self._eval_at.discard((when, pool_id))
        pool = self.by_pool[pool_id]
        pool.evaluations += 1
        if self.bookings_check is not None and pool.evaluations % 10 == 0:
            await self._check_bookings_ignored(pool)
        result = await self.autoscaler.reconcile(pool_id)
        if result.requeue_after is not None:
            self._evaluate_at(self.now + result.requeue_after, pool_id)

    async def _check_bookings_ignored(self, pool: SimPool) -> None:
        """Whether `plan_pool` decides the same with the bookings of the next two hours as with those its
        look-ahead lets the control plane send (a reactive pool's `look_ahead_minutes` is 0)."""
        work = await self.pool_work(pool.record.id)
        horizon = (self.now + 7200, "")
        wider = [self._booking(self.by_session[sid]) for _, sid in pool.live[:bisect.bisect_left(pool.live, horizon)]]
        if len(wider) == len(work.bookings):
            return
        sent, told = plan_pool(work), plan_pool(work.model_copy(update={"bookings": wider}))
        changed, checked = self.bookings_check or (0, 0)
        differs = (sent.desired_workers, sent.launch, sent.resume, sent.retire, sent.terminate, sent.warm_up) != (
            told.desired_workers, told.launch, told.resume, told.retire, told.terminate, told.warm_up)
        self.bookings_check = (changed + differs, checked + 1)

    def _pass_soon(self, after: float | None = None) -> None:
        """A scheduling pass at the loop's next tick (from now, or from `after`)."""
        when = -(-(self.now if after is None else after) // SCHEDULING_INTERVAL) * SCHEDULING_INTERVAL
        if when not in self._pass_at:
            self._pass_at.add(when)
            self.at(when, SCHEDULING, lambda: self._pass(when))

    async def _pass(self, when: float) -> None:
        self._pass_at.discard(when)
        await self.scheduling.run_once()
        if any(s.booked.start - self.ahead <= self.now for s in self.pending.values()):
            self._pass_soon(after=when + SCHEDULING_INTERVAL)

    # ---- sessions

    def _book(self, booked: BookedSession) -> None:
        pool = self.by_pool[f"pool-{booked.lab.track}"]
        state = self.by_session[booked.id] = SessionState(booked, pool.record.id,
                                                          lab_boot=self.durations.lab_boot(booked.id))
        self.pending[booked.id] = state
        bisect.insort(pool.live, (booked.start, booked.id))
        due = max(self.now, booked.start - self.ahead)
        self.at(due, SESSIONS, self._pass_soon)
        self.at(max(self.now, booked.start - state.lab_boot), SESSIONS, lambda: self._last_call(state))
        self.at(booked.end, SESSIONS, lambda: self._slot_ends(state))
        self._evaluate_at(self.now, pool.record.id)

    def _last_call(self, state: SessionState) -> None:
        """The last moment the session can be placed with its lab ready by its timeslot's start: if it is
        still waiting, what its pool looks like (the session placed by a pass at this very instant is on time,
        and its note is not reported)."""
        if state.status is LabletSessionStatus.PENDING:
            pool = self.by_pool[state.pool_id]
            cap, last = pool.record.capacity, pool.record.last_decision
            state.late_because = (f"{state.lab_boot / 60:.1f} min before its slot: pool desired "
                                  f"{pool.record.desired_workers}, ready {cap.ready}, on the way "
                                  f"{cap.on_the_way}, parked {cap.parked}, leaving {cap.leaving}, waiting "
                                  f"{len(pool.waiting)}; last decision "
                                  + (f"{last.inputs.get('rule')}: {last.reason}" if last else "none")
                                  + f"; session: {state.pending_reason}")

    def _slot_ends(self, state: SessionState) -> None:
        pool = self.by_pool[state.pool_id]
        pool.live.remove((state.booked.start, state.booked.id))
        pool.waiting.pop(state.booked.id, None)
        self.pending.pop(state.booked.id, None)
        if state.status is LabletSessionStatus.PENDING:
            state.status = LabletSessionStatus.EXPIRED  # the CPA expires overdue sessions
            return
        state.status = LabletSessionStatus.STOPPED
        worker = self.by_worker[state.worker_id or ""]
        del worker.sessions[state.booked.id]
        worker.row = None

    def _booking(self, state: SessionState) -> Booking:
        if state.booking is None:
            b = state.booked
            state.booking = Booking(session_id=b.id, timeslot_start=self.moment(b.start),
                                    timeslot_end=self.moment(b.end), cpu_cores=b.lab.cpu_cores,
                                    memory_gb=b.lab.memory_gb, worker_id=state.worker_id,
                                    definition_id=b.lab.definition)
        return state.booking

    def _view(self, state: SessionState) -> SessionWorkView:
        if state.view is None:
            b = state.booked
            state.view = SessionWorkView(
                id=b.id, status=state.status, version=1, definition_id=b.lab.definition, definition_version=1,
                worker_id=state.worker_id, timeslot_start=self.moment(b.start), timeslot_end=self.moment(b.end),
                resource_requirements=requirements_of(b.lab), lab_track=b.lab.track,
                pending_reason=state.pending_reason)
        return state.view

    # ---- the lablet-controller's gateway (SchedulingGateway)

    async def sessions(self, *statuses: LabletSessionStatus) -> list[SessionWorkView]:
        return [self._view(s) for s in self.pending.values() if s.status in statuses]

    async def session(self, session_id: str) -> SessionWorkView:
        if session_id not in self.by_session:
            raise NotFoundError(f"session {session_id} not found")
        return self._view(self.by_session[session_id])

    async def definition(self, definition_id: str, version: int) -> DefinitionWorkView:
        return self.definitions[definition_id]

    async def workers(self) -> list[WorkerSummary]:
        return [w.summary() for w in self.by_worker.values() if w.stage is not Stage.TERMINATED]

    async def pools(self) -> list[PoolView]:
        return [pool.current_view() for pool in self.by_pool.values()]

    async def schedule(self, session_id: str, worker_id: str | None, decision: SchedulingDecision
                       ) -> SessionWorkView:
        state = self.by_session[session_id]
        pool = self.by_pool[state.pool_id]
        state.view = None
        if worker_id is None:
            state.pending_reason, state.waiting_for_pool = decision.reason, decision.waiting_for_pool
            if decision.waiting_for_pool is not None:
                pool.waiting[session_id] = state
                self._evaluate_at(self.now, decision.waiting_for_pool)  # the CPA's capacity_request key
            else:
                pool.waiting.pop(session_id, None)
            return self._view(state)
        worker = self.by_worker[worker_id]
        assert worker.stage is Stage.SERVING, f"{worker_id} is {worker.stage}"
        worker.sessions[session_id] = state.booked.lab
        worker.row = None
        state.status, state.worker_id, state.placed_at = LabletSessionStatus.SCHEDULED, worker_id, self.now
        asked, ready = ((at - state.booked.start) / 60 for at in (worker.asked_at, worker.serving_since or 0.0))
        how = "resumed" if worker.resumed else "launched"
        state.placed_on = f"{worker.name} ({how} {asked:+.1f}, serving {ready:+.1f})"
        state.booking, state.pending_reason = None, None
        pool.waiting.pop(session_id, None)
        del self.pending[session_id]
        return self._view(state)

    # ---- the worker-controller's gateway (PoolGateway)

    async def pool_work(self, pool_id: str) -> PoolWork:
        pool = self.by_pool[pool_id]
        view = pool.current_view()
        horizon = self.now + view.scaling.look_ahead_minutes * 60
        # As the CPA reads them: the track's sessions pending or holding a worker that overlap [now, horizon).
        bookings = [self._booking(self.by_session[sid]) for _, sid in pool.live[:bisect.bisect_left(
            pool.live, (horizon, ""))]]
        if pool.lead is None:
            pool.lead = lead_time(pool.provisioned, pool.resumed,
                                  default_provision_seconds=view.scaling.provision_lead_minutes * 60,
                                  default_resume_seconds=view.scaling.resume_lead_minutes * 60)
        waiting = list(pool.waiting.values())
        return PoolWork(
            pool=view, workers=[w.summary() for w in pool.members if w.stage is not Stage.TERMINATED],
            waiting=WaitingDemand(sessions=len(waiting), cpu_cores=sum(s.booked.lab.cpu_cores for s in waiting),
                                  memory_gb=sum(s.booked.lab.memory_gb for s in waiting)),
            template_capacity=TEMPLATE_CAPACITY, template_regions=[REGION],
            template_cost_per_hour_usd=COST_PER_HOUR_USD, bookings=bookings, lead_time=pool.lead,
            observed_at=self.moment(self.now))

    async def report_evaluation(self, pool_id: str, evaluation: PoolEvaluation) -> PoolView:
        pool = self.by_pool[pool_id]
        _, launches = pool.record.apply_evaluation(evaluation, self.moment(self.now), "worker-controller")
        pool.record.version += 1
        pool.view = None
        # The launch numbers: those of `launch`, then those of `warm_up` (the CPA's order).
        for n, seq in enumerate(launches):
            if n < len(evaluation.launch):
                self._launch(pool, seq)
            else:
                self._warm_up(pool, seq)
        for worker_id in evaluation.resume:
            self._resume(self.by_worker[worker_id])
        for worker_id in evaluation.retire:
            then = DesiredStatus.STOPPED if evaluation.retire_then is ScaleDownAction.STOP else DesiredStatus.TERMINATED
            self._retire(self.by_worker[worker_id], then)
        for worker_id in evaluation.terminate:
            self._retire(self.by_worker[worker_id], DesiredStatus.TERMINATED)
        return pool.current_view()

    def _sample(self) -> None:
        running = {p.lab.track: sum(w.running for w in p.members) for p in self.by_pool.values()}
        serving = {p.lab.track: sum(w.stage is Stage.SERVING for w in p.members) for p in self.by_pool.values()}
        self.samples.append(Sample(self.now, running, serving))
