"""The simulated workers of bench/autoscaling.py: where each one is (`Stage`), the row the control plane would
answer for it (`SimWorker.summary`: what `serving`, `on_its_way` and `member_role` read), and its bill.

A launched worker goes LAUNCHING (EC2) -> BOOTING (CML boot and image copy) -> LICENSING -> SERVING; a resumed
one STARTING (EC2) -> BOOTING -> LICENSING -> SERVING; a retired one UNLICENSING (drained, licence released) ->
STOPPING -> STOPPED, or TERMINATING -> TERMINATED; a warm-up launch LAUNCHING -> BOOTING -> WARMED, then the
autoscaler stops it. `autoscaling_sim.Simulation` moves them and times every step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING

from autoscaling_workload import (
    CPU_CORES,
    INSTANCE_TYPE,
    MAX_NODES,
    MEMORY_GB,
    MIN_BILLED_SECONDS,
    STORAGE_GB,
    TERM_START,
    Durations,
    LabType,
)

from control_plane_api.domain.pool import launch_key
from control_plane_api.domain.worker import worker_id_for
from lcm_core.domain.enums import DesiredStatus, LicenseStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.workers import CapacitySummary, Resources, WorkerSummary, worker_phase

if TYPE_CHECKING:
    from autoscaling_state import SessionState, SimPool

REGION = "us-east-1"
#: Events at one instant: the world's come first (then the sessions', then the controllers').
WORLD = 0
TEMPLATE_CAPACITY = Resources(cpu_cores=CPU_CORES, memory_gb=MEMORY_GB, storage_gb=STORAGE_GB, max_nodes=MAX_NODES)


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
    lead_clock: tuple[str, float] | None = None
    """("provision" or "resume", when it was asked for) from a launch or resume until it first serves, as the
    control plane's `LeadClock` (a warm-up's stays while it is stopped, until a resume replaces it)."""
    serving_since: float | None = None
    """When it last became serving (its launch or resume was asked at `asked_at`)."""
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
                getting_ready_by=self.lead_clock[0] if self.lead_clock else None,
                getting_ready_since=TERM_START + timedelta(seconds=self.lead_clock[1]) if self.lead_clock else None,
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


class World:
    """EC2, CML and the licences under the simulated control plane (a mixin of `autoscaling_sim.Simulation`,
    which supplies the clock, the event queue, the pools and the workers): it carries out launches, warm-ups,
    resumes and retirements, each step drawn from `Durations`, and keeps the lead-time samples and the bills."""

    if TYPE_CHECKING:
        now: float
        durations: Durations
        by_pool: dict[str, SimPool]
        by_worker: dict[str, SimWorker]
        pending: dict[str, SessionState]

        def at(self, when: float, order: int, action: Callable[[], Awaitable[None] | None]) -> None: ...
        def _new_worker(self, pool: SimPool, worker_id: str, name: str, stage: Stage) -> SimWorker: ...
        def _pass_soon(self, after: float | None = None) -> None: ...

    def _launch(self, pool: SimPool, seq: int) -> None:
        # The CPA names the worker of launch number `seq` after its idempotency key.
        worker = self._new_worker(pool, worker_id_for(launch_key(pool.record.id, seq)),
                                  f"{pool.record.name}-{seq:03d}", Stage.LAUNCHING)
        ec2, boot, licence = self.durations.launch()
        worker.bill_start(self.now)
        worker.lead_clock = ("provision", self.now)
        self._go(worker, [(Stage.BOOTING, ec2), (Stage.LICENSING, boot), (Stage.SERVING, licence)])

    def _warm_up(self, pool: SimPool, seq: int) -> None:
        """A worker launched into the warm pool (`park_when_ready`): EC2's launch and CML's first boot (the image
        copy), no licence; the autoscaler stops it once its CML is available."""
        pool.warm_ups += 1
        worker = self._new_worker(pool, worker_id_for(launch_key(pool.record.id, seq)),
                                  f"{pool.record.name}-{seq:03d}", Stage.LAUNCHING)
        worker.park_when_ready = True
        ec2, boot, _ = self.durations.launch()
        worker.bill_start(self.now)
        worker.lead_clock = ("provision", self.now)
        self._go(worker, [(Stage.BOOTING, ec2), (Stage.WARMED, boot)])

    def _resume(self, worker: SimWorker) -> None:
        if worker.stage is not Stage.STOPPED:
            return  # the CPA resumes only a member that is stopped here (plan_pool resumes no other)
        ec2, boot, licence = self.durations.resume()
        self.by_pool[worker.pool_id].resumes += 1
        # Out of the warm pool (the CPA's `resume_for_pool`): an ordinary member, licensed once its CML is up.
        worker.asked_at, worker.resumed, worker.then, worker.park_when_ready = self.now, True, None, False
        worker.lead_clock = ("resume", self.now)
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
            worker.serving_since, worker.lead_clock = self.now, None
            (pool.resumed if worker.resumed else pool.provisioned).append(self.now - worker.asked_at)
            pool.lead = None
            if self.pending:
                self._pass_soon()
        elif stage is Stage.STOPPED:
            worker.bill_stop(self.now)
            worker.stopped_since, worker.then = self.now, None
        elif stage is Stage.TERMINATED:
            worker.bill_stop(self.now)
            worker.bill_stopped_end(self.now)
