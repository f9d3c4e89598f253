"""The simulation of bench/autoscaling.py: a control plane, EC2 and CML on a virtual clock, driven by the
controllers' own code.

`Simulation` plays the control plane (pools, workers, sessions) and the world under it (EC2 launches, starts
and stops; CML boots; licence registrations), with every duration drawn by `autoscaling_workload.Durations`.
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
import heapq
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from autoscaling_workload import (
    COST_PER_HOUR_USD,
    CPU_CORES,
    INSTANCE_TYPE,
    LAB_TYPES,
    MAX_NODES,
    MEMORY_GB,
    MIN_BILLED_SECONDS,
    STORAGE_GB,
    TEMPLATE_NAME,
    TERM_START,
    BookedSession,
    Durations,
    LabType,
)

from control_plane_api.domain.pool import WorkerPool, launch_key
from control_plane_api.domain.worker import worker_id_for
from lablet_controller.application.scheduling import SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.lablets import (
    DefinitionWorkView,
    LabletDefinitionStatus,
    LabletSessionStatus,
    PortSpec,
    ResourceRequirements,
    SchedulingDecision,
    SessionWorkView,
)
from lcm_core.domain.pool_forecast import Booking, LeadTime, lead_time
from lcm_core.domain.pools import PoolEvaluation, PoolSpec, PoolView, PoolWork, ScaleDownAction, ScalingConfig
from lcm_core.domain.workers import CapacitySummary, Resources, WorkerSummary, worker_phase
from lcm_core.errors import NotFoundError
from worker_controller.application.autoscaler import PoolAutoscaler, plan_pool

AUTOSCALER_INTERVAL = 30.0
SCHEDULING_INTERVAL = 10.0
SCHEDULE_AHEAD = 900.0
"""`LABLET_SCHEDULE_AHEAD`: a pending session is placed once its timeslot starts within it."""
SAMPLE_EVERY = 300.0
REGION = "us-east-1"
PORTS_PER_WORKER = 3000
TEMPLATE_CAPACITY = Resources(cpu_cores=CPU_CORES, memory_gb=MEMORY_GB, storage_gb=STORAGE_GB, max_nodes=MAX_NODES)
#: Events at one instant run in this order: the world, then bookings, then the controllers.
WORLD, SESSIONS, BOOKINGS, SCHEDULING, AUTOSCALING, SAMPLING = range(6)


class Stage(Enum):
    """Where a simulated worker is, and what its row says: (status, desired, CML service, health, licence)."""

    LAUNCHING = (WorkerStatus.PROVISIONING, DesiredStatus.RUNNING, ServiceStatus.UNAVAILABLE, "unknown",
                 LicenseStatus.UNREGISTERED)
    STARTING = (WorkerStatus.STARTING, DesiredStatus.RUNNING, ServiceStatus.UNAVAILABLE, "unknown",
                LicenseStatus.UNREGISTERED)
    BOOTING = (WorkerStatus.RUNNING, DesiredStatus.RUNNING, ServiceStatus.STARTING, "unknown",
               LicenseStatus.UNREGISTERED)
    LICENSING = (WorkerStatus.RUNNING, DesiredStatus.RUNNING, ServiceStatus.AVAILABLE, "healthy",
                 LicenseStatus.REGISTERING)
    SERVING = (WorkerStatus.RUNNING, DesiredStatus.RUNNING, ServiceStatus.AVAILABLE, "healthy",
               LicenseStatus.REGISTERED)
    WARMED = (WorkerStatus.RUNNING, DesiredStatus.RUNNING, ServiceStatus.AVAILABLE, "healthy",
              LicenseStatus.UNREGISTERED)
    """Launched into the warm pool (`park_when_ready`): booted once, no licence, waiting to be stopped."""
    UNLICENSING = (WorkerStatus.DRAINING, None, ServiceStatus.AVAILABLE, "healthy", LicenseStatus.DEREGISTERING)
    STOPPING = (WorkerStatus.STOPPING, None, ServiceStatus.UNAVAILABLE, "unknown", LicenseStatus.UNREGISTERED)
    STOPPED = (WorkerStatus.STOPPED, DesiredStatus.STOPPED, ServiceStatus.UNAVAILABLE, "unknown",
               LicenseStatus.UNREGISTERED)
    TERMINATING = (WorkerStatus.TERMINATING, DesiredStatus.TERMINATED, ServiceStatus.UNAVAILABLE, "unknown",
                   LicenseStatus.UNREGISTERED)
    TERMINATED = (WorkerStatus.TERMINATED, DesiredStatus.TERMINATED, ServiceStatus.UNAVAILABLE, "unknown",
                  LicenseStatus.UNREGISTERED)


@dataclass
class SimWorker:
    id: str
    name: str
    pool_id: str
    track: str
    stage: Stage
    asked_at: float
    """When the launch or resume that brought it up was decided (its lead time is measured from there)."""
    resumed: bool = False
    park_when_ready: bool = False
    """Launched into the warm pool: it boots once and is stopped, licence-free, when its CML is available."""
    then: DesiredStatus | None = None
    """Where a retirement takes it (stopped or terminated)."""
    plan: list[tuple[Stage, float]] = field(default_factory=list)
    """The stages still ahead of it and how long each lasts."""
    generation: int = 0
    """Moves when its course changes: a transition scheduled before is dropped."""
    sessions: dict[str, LabType] = field(default_factory=dict)
    running_since: float | None = None
    stopped_since: float | None = None
    running_seconds: float = 0.0
    billed_seconds: float = 0.0
    stopped_seconds: float = 0.0
    starts: int = 0
    row: WorkerSummary | None = None

    def summary(self) -> WorkerSummary:
        """Its row as the control plane would answer it (cached until it changes)."""
        if self.row is None:
            status, desired, service, health, licence = self.stage.value
            if self.stage in (Stage.UNLICENSING, Stage.STOPPING):
                desired = self.then
            labs = list(self.sessions.values())
            cpu = sum(lab.cpu_cores for lab in labs)
            memory = sum(lab.memory_gb for lab in labs)
            serving = self.stage is Stage.SERVING
            self.row = WorkerSummary(
                id=self.id, name=self.name, aws_region=REGION, instance_type=INSTANCE_TYPE, status=status,
                desired_status=desired, service_status=service, health_status=health, license_status=licence,
                phase=worker_phase(status, service, licence, len(labs)), lab_track=self.track,
                pool_id=self.pool_id, sessions=len(labs), labs_count=len(labs), park_when_ready=self.park_when_ready,
                drain_then=self.then if self.stage is Stage.UNLICENSING else None,
                capacity=CapacitySummary(declared=TEMPLATE_CAPACITY, allocated=Resources(
                    cpu_cores=cpu, memory_gb=memory, storage_gb=sum(lab.storage_gb for lab in labs),
                    max_nodes=sum(lab.nodes for lab in labs)), ports_used=sum(lab.ports for lab in labs)),
                # What the metrics cycle would read: CML's base load, labs' nodes mostly idle once booted
                # (60 % of their cores busy), and their memory plus CML's own 8 GB.
                cpu_percent=round(5 + 60 * cpu / CPU_CORES, 1) if serving else None,
                memory_percent=round(100 * (8 + memory) / MEMORY_GB, 1) if serving else None)
        return self.row

    # ---- the ledger

    def bill_start(self, now: float) -> None:
        self.bill_stopped_end(now)
        self.running_since, self.starts = now, self.starts + 1

    def bill_stop(self, now: float) -> None:
        if self.running_since is not None:
            ran = now - self.running_since
            self.running_seconds += ran
            self.billed_seconds += max(ran, MIN_BILLED_SECONDS)
            self.running_since = None

    def bill_stopped_end(self, now: float) -> None:
        if self.stopped_since is not None:
            self.stopped_seconds += now - self.stopped_since
            self.stopped_since = None

    @property
    def running(self) -> bool:
        return self.running_since is not None


@dataclass
class SessionState:
    booked: BookedSession
    pool_id: str
    status: LabletSessionStatus = LabletSessionStatus.PENDING
    worker_id: str | None = None
    placed_at: float | None = None
    waiting_for_pool: str | None = None
    pending_reason: str | None = None
    booking: Booking | None = None
    """As `PoolWork.bookings` carries it (rebuilt when it is placed)."""
    view: SessionWorkView | None = None
    late_because: str | None = None
    """What its pool looked like when its timeslot started without it."""


@dataclass
class SimPool:
    lab: LabType
    record: WorkerPool
    members: list[SimWorker] = field(default_factory=list)
    provisioned: list[float] = field(default_factory=list)
    """Measured launch-to-serving durations (seconds), oldest first."""
    resumed: list[float] = field(default_factory=list)
    lead: LeadTime | None = None
    view: PoolView | None = None
    live: list[tuple[float, str]] = field(default_factory=list)
    """(timeslot start, session id) of its booked sessions that have not ended, by start."""
    waiting: dict[str, SessionState] = field(default_factory=dict)
    evaluations: int = 0
    resumes: int = 0
    warm_ups: int = 0

    def current_view(self) -> PoolView:
        if self.view is None:
            self.view = self.record.view()
        return self.view


class AlwaysLeading:
    """The fence of a leader whose lease never runs out (one process, one autoscaler)."""

    margin_seconds = 0.0

    def check(self, action: str) -> None:
        return None


@dataclass
class Sample:
    at: float
    running: dict[str, int]
    serving: dict[str, int]


class Simulation:
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
            lab_topology_yaml="lab: {}", resource_requirements=_requirements(lab), lab_track=lab.track,
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
            self.at(booked.booked_at, BOOKINGS, lambda b=booked: self._book(b))
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
        differs = (sent.desired_workers, sent.launch, sent.resume, sent.retire) != (
            told.desired_workers, told.launch, told.resume, told.retire)
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
        state = self.by_session[booked.id] = SessionState(booked, pool.record.id)
        self.pending[booked.id] = state
        bisect.insort(pool.live, (booked.start, booked.id))
        due = max(self.now, booked.start - self.ahead)
        self.at(due, SESSIONS, self._pass_soon)
        self.at(booked.start, SESSIONS, lambda: self._slot_starts(state))
        self.at(booked.end, SESSIONS, lambda: self._slot_ends(state))
        self._evaluate_at(self.now, pool.record.id)

    def _slot_starts(self, state: SessionState) -> None:
        if state.status is LabletSessionStatus.PENDING:
            pool = self.by_pool[state.pool_id]
            cap, last = pool.record.capacity, pool.record.last_decision
            state.late_because = (f"pool desired {pool.record.desired_workers}, ready {cap.ready}, on the way "
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
                resource_requirements=_requirements(b.lab), lab_track=b.lab.track, pending_reason=state.pending_reason)
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
            waiting={"sessions": len(waiting), "cpu_cores": sum(s.booked.lab.cpu_cores for s in waiting),
                     "memory_gb": sum(s.booked.lab.memory_gb for s in waiting)},
            template_capacity=TEMPLATE_CAPACITY, template_regions=[REGION],
            template_cost_per_hour_usd=COST_PER_HOUR_USD, bookings=bookings, lead_time=pool.lead,
            observed_at=self.moment(self.now))

    async def report_evaluation(self, pool_id: str, evaluation: PoolEvaluation) -> PoolView:
        pool = self.by_pool[pool_id]
        _, launches = pool.record.apply_evaluation(evaluation, self.moment(self.now), "worker-controller")
        pool.record.version += 1
        pool.view = None
        for seq in launches:
            self._launch(pool, seq)
        for _ in evaluation.warm_up:
            self._warm_up(pool)
        for worker_id in evaluation.resume:
            self._resume(self.by_worker[worker_id])
        for worker_id in evaluation.retire:
            then = DesiredStatus.STOPPED if evaluation.retire_then is ScaleDownAction.STOP else DesiredStatus.TERMINATED
            self._retire(self.by_worker[worker_id], then)
        for worker_id in evaluation.terminate:
            self._retire(self.by_worker[worker_id], DesiredStatus.TERMINATED)
        return pool.current_view()

    # ---- the world: EC2, CML, licences

    def _launch(self, pool: SimPool, seq: int) -> None:
        # The CPA names the worker of launch number `seq` after its idempotency key.
        worker = self._new_worker(pool, worker_id_for(launch_key(pool.record.id, seq)),
                                  f"{pool.record.name}-{seq:03d}", Stage.LAUNCHING)
        ec2, boot, licence = self.durations.launch()
        worker.bill_start(self.now)
        self._go(worker, [(Stage.BOOTING, ec2), (Stage.LICENSING, boot), (Stage.SERVING, licence)])

    def _warm_up(self, pool: SimPool) -> None:
        """A worker launched into the warm pool: EC2's launch and CML's first boot (the image copy), no
        licence; the autoscaler stops it once its CML is available. (The control plane does not number these
        launches yet: they are named apart.)"""
        pool.warm_ups += 1
        worker = self._new_worker(pool, worker_id_for(f"pool:{pool.record.id}:warm:{pool.warm_ups}"),
                                  f"{pool.record.name}-warm-{pool.warm_ups:03d}", Stage.LAUNCHING)
        worker.park_when_ready = True
        ec2, boot, _ = self.durations.launch()
        worker.bill_start(self.now)
        self._go(worker, [(Stage.BOOTING, ec2), (Stage.WARMED, boot)])

    def _resume(self, worker: SimWorker) -> None:
        if worker.stage is not Stage.STOPPED:
            return  # the CPA resumes only a member that is stopped here (plan_pool resumes no other)
        ec2, boot, licence = self.durations.resume()
        self.by_pool[worker.pool_id].resumes += 1
        worker.asked_at, worker.resumed, worker.then = self.now, True, None
        worker.bill_start(self.now)
        self._enter(worker, Stage.STARTING)
        self._go(worker, [(Stage.BOOTING, ec2), (Stage.LICENSING, boot), (Stage.SERVING, licence)])

    def _retire(self, worker: SimWorker, then: DesiredStatus) -> None:
        """Drain (it holds no session: plan_pool retires none that does), release the licence, then stop or
        terminate; one whose instance is still starting is stopped or terminated at once."""
        assert not worker.sessions, f"{worker.id} retired with sessions"
        final = Stage.STOPPED if then is DesiredStatus.STOPPED else Stage.TERMINATED
        down = Stage.STOPPING if then is DesiredStatus.STOPPED else Stage.TERMINATING
        if worker.stage in (Stage.STOPPED, Stage.TERMINATING, Stage.TERMINATED) or (
                worker.stage in (Stage.UNLICENSING, Stage.STOPPING) and worker.then is then):
            if worker.stage is Stage.STOPPED and then is DesiredStatus.TERMINATED:
                worker.then = then
                self._go(worker, [(Stage.TERMINATING, 0.0), (Stage.TERMINATED, self.durations.retire()[1])])
            return
        deregister, stop = self.durations.retire()
        worker.then = then
        if worker.stage in (Stage.LICENSING, Stage.SERVING, Stage.UNLICENSING):
            self._go(worker, [(Stage.UNLICENSING, 0.0), (down, deregister), (final, stop)])
        else:  # launching, starting, booting: no licence to release
            self._go(worker, [(down, 0.0), (final, stop)])

    def _go(self, worker: SimWorker, plan: list[tuple[Stage, float]]) -> None:
        """Set the worker on a new course (any transition scheduled before is dropped)."""
        worker.generation += 1
        worker.plan = plan
        self._next(worker, worker.generation)

    def _next(self, worker: SimWorker, generation: int) -> None:
        if generation != worker.generation or not worker.plan:
            return
        stage, after = worker.plan.pop(0)
        if after <= 0:
            self._enter(worker, stage)
            self._next(worker, generation)
        else:
            self.at(self.now + after, WORLD, lambda: self._arrive(worker, stage, generation))

    def _arrive(self, worker: SimWorker, stage: Stage, generation: int) -> None:
        if generation == worker.generation:
            self._enter(worker, stage)
            self._next(worker, generation)

    def _enter(self, worker: SimWorker, stage: Stage) -> None:
        worker.stage, worker.row = stage, None
        pool = self.by_pool[worker.pool_id]
        if stage is Stage.SERVING:
            (pool.resumed if worker.resumed else pool.provisioned).append(self.now - worker.asked_at)
            pool.lead = None
            if self.pending:
                self._pass_soon()
        elif stage is Stage.STOPPED:
            worker.bill_stop(self.now)
            worker.stopped_since, worker.then, worker.park_when_ready = self.now, None, False
        elif stage is Stage.TERMINATED:
            worker.bill_stop(self.now)
            worker.bill_stopped_end(self.now)

    def _sample(self) -> None:
        running = {p.lab.track: sum(w.running for w in p.members) for p in self.by_pool.values()}
        serving = {p.lab.track: sum(w.stage is Stage.SERVING for w in p.members) for p in self.by_pool.values()}
        self.samples.append(Sample(self.now, running, serving))


def _requirements(lab: LabType) -> ResourceRequirements:
    return ResourceRequirements(cpu_cores=lab.cpu_cores, memory_gb=lab.memory_gb, storage_gb=lab.storage_gb,
                                node_count=lab.nodes)
