"""The worker-pool contract shared by the control plane, both controllers and the dashboard (docs/pools.md).
No I/O.

A pool is the capacity of one lab track: workers launched from one template in a few regions, kept between a
minimum and a maximum by a scaling policy. The control plane stores the pool (`PoolView` is how everyone reads
it); the worker-controller's autoscaler decides (`worker_controller.domain.autoscaling`) and reports each
evaluation (`PoolEvaluation`); the lablet-controller places a track's sessions on its pool first and, when
nothing fits, leaves them waiting for the pool's capacity.

Derived values are computed once: whether a moment lies in the allowed hours (`AllowedHours.contains`) here; a
pool's capacity from its workers' rows and which workers count toward its size in `lcm_core.domain.pool_capacity`.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lcm_core.domain.cml_snapshot import StrictModel
from lcm_core.domain.lablets import TrackName
from lcm_core.domain.pool_capacity import PoolCapacity, WaitingDemand
from lcm_core.domain.pool_forecast import MAX_STEPS, Booking, DemandStep, LeadTime
from lcm_core.domain.types import AwsRegion, Count, Instant, Integer, Label, Number, Text
from lcm_core.domain.workers import Resources, WorkerSummary

#: Scaling decisions a pool keeps (the newest last).
HISTORY_LIMIT = 50
#: Most workers one pool may have.
MAX_POOL_WORKERS = 1000
#: A pool's name and its lab track: what a worker template name allows.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

PoolName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]


class PoolPhase(StrEnum):
    PENDING = "pending"
    """Created; the autoscaler has not looked at it yet."""
    INITIALIZING = "initializing"
    """Launching its first workers; none has been ready yet."""
    READY = "ready"
    SCALING_UP = "scaling_up"
    SCALING_DOWN = "scaling_down"
    DRAINING = "draining"
    """An operator drained it: its workers take no new session and stop once empty; no scaling."""
    TERMINATING = "terminating"
    """Deleted: its workers are drained, then terminated."""
    TERMINATED = "terminated"
    FAILED = "failed"
    """It cannot reach its size (its template is gone or disabled, launches fail): see `error`."""


class ScalingPolicy(StrEnum):
    NONE = "none"
    """Manual: the pool keeps the size it was given (`POST /api/pools/{id}/scale`), within min and max."""
    CAPACITY_BASED = "capacity_based"
    """CPU and memory utilisation of its ready workers against the up and down thresholds."""
    LAB_COUNT_BASED = "lab_count_based"
    """Sessions (held and waiting) per worker against the most and fewest labs per worker."""
    SCHEDULED = "scheduled"
    """The maximum inside the allowed hours, the minimum outside them."""
    HYBRID = "hybrid"
    """Capacity- and lab-count-based together: up when either asks, down only when both agree."""


class ScalingAction(StrEnum):
    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    NONE = "none"


class ScalingTrigger(StrEnum):
    """Why the size changed (or did not): only `policy` decisions start a cooldown; reaching the bounds does
    not wait for one, and an operator's `manual` scale starts one so that the policy does not undo it at once."""

    POLICY = "policy"
    BOUNDS = "bounds"
    MANUAL = "manual"
    CONVERGE = "converge"
    """The size stands; workers are launched, resumed or retired to match it (a worker failed or left)."""
    DRAIN = "drain"
    DELETE = "delete"


class ScaleDownAction(StrEnum):
    STOP = "stop"
    """Drained workers are stopped (EBS only) and stay in the pool, to be resumed first on the next scale-up."""
    TERMINATE = "terminate"


class AllowedHours(StrictModel):
    """When automatic scaling may act, in a time zone: from `start` to `end` (an `end` before `start` spans
    midnight; `end` equal to `start` is the whole day) on the given weekdays (0 is Monday)."""

    start: time = time(0, 0)
    end: time = time(0, 0)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=lambda: list(range(7)),
                                                              min_length=1, max_length=7)
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        if not zone_exists(zone):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Europe/Paris)")
        return zone

    @field_validator("start", "end")
    @classmethod
    def _local(cls, clock: time) -> time:
        # The times are local to `timezone`; an offset would contradict it, and cannot be compared with the
        # local clock `contains` reads.
        if clock.tzinfo is not None:
            raise ValueError(f"give the time of day without an offset ({clock:%H:%M}); the window's time zone "
                             "is `timezone`")
        return clock

    @field_validator("weekdays")
    @classmethod
    def _distinct(cls, days: list[int]) -> list[int]:
        return sorted(set(days))

    def contains(self, moment: datetime) -> bool:
        """Whether `moment` (timezone-aware) lies in the window, in the window's time zone. A window that spans
        midnight belongs to the weekday it starts on."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        if self.start == self.end:  # a whole day from `start`
            return (local.weekday() if clock >= self.start else (local.weekday() - 1) % 7) in self.weekdays
        if self.start < self.end:
            return local.weekday() in self.weekdays and self.start <= clock < self.end
        if clock >= self.start:
            return local.weekday() in self.weekdays
        return clock < self.end and (local.weekday() - 1) % 7 in self.weekdays

    def describe(self) -> str:
        days = "every day" if len(self.weekdays) == 7 else "days " + ",".join(
            "MTWTFSS"[d] for d in self.weekdays)
        hours = "all day" if self.start == self.end == time(0, 0) else f"{self.start:%H:%M}-{self.end:%H:%M}"
        return f"{hours} {self.timezone}, {days}"


def zone_exists(zone: str) -> bool:
    """Whether `zone` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


#: Fewest labs per worker when the operator sets only the most and it is below the default (3).
def _default_min_labs(max_labs: int) -> int:
    return max(0, max_labs // 2)


class ScalingConfig(StrictModel):
    """How a pool scales. Percentages are of its ready workers' average measured utilisation."""

    policy: ScalingPolicy = ScalingPolicy.NONE
    min_workers: Integer = Field(default=1, ge=0, le=MAX_POOL_WORKERS)
    max_workers: Integer = Field(default=10, ge=0, le=MAX_POOL_WORKERS)
    cpu_scale_up_percent: Number = Field(default=75, gt=0, le=100)
    cpu_scale_down_percent: Number = Field(default=30, ge=0, lt=100)
    memory_scale_up_percent: Number = Field(default=80, gt=0, le=100)
    memory_scale_down_percent: Number = Field(default=40, ge=0, lt=100)
    max_labs_per_worker: Integer = Field(default=15, ge=1, le=1000)
    """Sessions one worker should hold at most: lab-count scaling adds workers beyond it."""
    min_labs_per_worker: Integer = Field(default=3, ge=0, le=1000)
    """Below this average per worker, lab-count scaling removes the workers it does not need."""
    scale_up_cooldown_minutes: Number = Field(default=10, ge=0, le=1440)
    """After any scaling, how long before the policy may scale up again (sessions waiting or booked for the
    pool are not held by it: they are counted exactly)."""
    scale_down_cooldown_minutes: Number = Field(default=20, ge=0, le=1440)
    """After a scale-down, how long before the policy may scale down again."""
    scale_down_delay_after_add_minutes: Number = Field(default=10, ge=0, le=1440)
    """After a scale-up (the policy's or an operator's), how long before the policy may scale down."""
    allowed_hours: AllowedHours | None = None
    """None: automatic scaling may act at any time (SCHEDULED then has no schedule and keeps its size)."""
    scale_down_action: ScaleDownAction = ScaleDownAction.STOP
    look_ahead_minutes: Number = Field(default=120, ge=0, le=7 * 1440)
    """How far ahead the sessions booked on the pool's track are counted (capacity-, lab-count-based and
    hybrid pools): workers are made ready before the timeslots that need them start, and none is retired that
    a booking within the look-ahead will need. 0: react only to the sessions already due."""
    warm_pool_size: Integer | None = Field(default=None, ge=0, le=MAX_POOL_WORKERS)
    """Stopped, licence-free workers (EBS only) the pool keeps to resume instead of launching cold: a
    scale-down stops workers up to this many and terminates beyond it, and while fewer are stopped the pool
    launches workers that boot once and stop (the warm-up). None: `scale_down_action` decides for every
    retired worker, and nothing is launched to be stopped."""
    ready_ahead_minutes: Number = Field(default=15, ge=0, le=240)
    """How long before a booked timeslot starts its workers should serve: its sessions are placed up to
    `LABLET_SCHEDULE_AHEAD` (15 min) before the start, and their labs are imported and booted after that, so a
    worker ready only at the start makes its students wait for their labs."""
    provision_lead_minutes: Number = Field(default=15, gt=0, le=240)
    """Time from launch to a serving worker, until enough launches of the template were measured."""
    resume_lead_minutes: Number = Field(default=8, gt=0, le=240)
    """Time from resume to a serving worker, until enough resumes of the template were measured."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if "min_labs_per_worker" not in self.model_fields_set and self.min_labs_per_worker >= self.max_labs_per_worker:
            self.min_labs_per_worker = _default_min_labs(self.max_labs_per_worker)
        problems = []
        if self.min_workers > self.max_workers:
            problems.append(f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers})")
        if self.cpu_scale_down_percent >= self.cpu_scale_up_percent:
            problems.append("cpu_scale_down_percent must be below cpu_scale_up_percent")
        if self.memory_scale_down_percent >= self.memory_scale_up_percent:
            problems.append("memory_scale_down_percent must be below memory_scale_up_percent")
        if self.min_labs_per_worker >= self.max_labs_per_worker:
            problems.append(f"min_labs_per_worker ({self.min_labs_per_worker}) must be below max_labs_per_worker "
                            f"({self.max_labs_per_worker})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# --------------------------------------------------------------------------- decisions


Figure = float | int | str | bool | None


class ScalingDecision(StrictModel):
    """One scaling decision, kept in the pool's history: what was done (or not), why, and on what numbers."""

    at: Instant
    action: ScalingAction
    trigger: ScalingTrigger = ScalingTrigger.POLICY
    policy: ScalingPolicy = ScalingPolicy.NONE
    from_workers: Count = 0
    to_workers: Count = 0
    reason: Annotated[Text, Field(max_length=1000)]
    inputs: dict[Annotated[str, Field(max_length=64)], Figure] = Field(default_factory=dict, max_length=40)
    """The numbers the decision was taken on (workers, ready, sessions, waiting, utilisation, thresholds)."""
    launched: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    """Workers created (launched from the template) by this decision."""
    resumed: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    retired: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    """Workers drained (then stopped or terminated) by this decision."""
    demand: list[DemandStep] = Field(default_factory=list, max_length=MAX_STEPS)
    """The booked demand over the look-ahead the decision was taken on (`pool_forecast.demand_steps`)."""
    lead_time: LeadTime | None = None
    """The lead times the decision counted with."""
    by: Label = "worker-controller"


# --------------------------------------------------------------------------- the pool as read


class PoolSpec(StrictModel):
    """What an operator sets on a pool (create; update replaces it)."""

    name: PoolName
    lab_track: TrackName
    """The lab track whose sessions the pool serves (one pool per track)."""
    template_name: PoolName
    regions: list[AwsRegion] = Field(default_factory=lambda: ["us-east-1"], min_length=1, max_length=16)
    description: Annotated[Text, Field(max_length=1000)] | None = None
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)

    @field_validator("regions")
    @classmethod
    def _distinct(cls, regions: list[str]) -> list[str]:
        return list(dict.fromkeys(regions))


class PoolView(BaseModel):
    """A pool as the control plane answers it (`/api/pools`, `/api/internal/pools`, every `pool.*` event's
    `data.pool`). Ignores unknown fields when read."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    lab_track: str
    template_name: str
    regions: list[str] = Field(default_factory=list)
    description: str | None = None
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    phase: PoolPhase = PoolPhase.PENDING
    desired_workers: int = 0
    """The size the pool is held at (min..max): set by the policy, or by an operator's scale."""
    draining: bool = False
    deleting: bool = False
    error: str | None = None
    capacity: PoolCapacity = Field(default_factory=PoolCapacity)
    capacity_observed_at: datetime | None = None
    last_decision: ScalingDecision | None = None
    last_scale_up_at: datetime | None = None
    last_scale_down_at: datetime | None = None
    ready_since: datetime | None = None
    """When the pool was first ready (None while initializing)."""
    launches: int = 0
    """Workers launched for the pool so far (the next launch's idempotency key counts from it)."""
    spec_version: int = 1
    """Moves with every change of the spec (what an operator sets), and only then: an edit names the one it
    read (`PUT /api/pools/{id}`), while `version` also moves with every evaluation the autoscaler reports."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0


class PoolWork(BaseModel):
    """What the autoscaler reads of one pool (`GET /api/internal/pools/{id}`): the pool, its workers' rows,
    the sessions waiting for it, and what its template offers."""

    model_config = ConfigDict(extra="ignore")

    pool: PoolView
    workers: list[WorkerSummary] = Field(default_factory=list)
    waiting: WaitingDemand = Field(default_factory=WaitingDemand)
    template_enabled: bool = True
    template_found: bool = True
    template_capacity: Resources = Field(default_factory=Resources)
    template_regions: list[str] = Field(default_factory=list)
    """Regions the template has a placement for (empty: any region)."""
    template_cost_per_hour_usd: float | None = None
    """What one running worker of the template costs (None: not priced)."""
    bookings: list[Booking] = Field(default_factory=list)
    """Sessions of the pool's track whose timeslot ends after `observed_at` and starts within the look-ahead,
    pending or holding a worker."""
    lead_time: LeadTime = Field(default_factory=LeadTime)
    """The template's measured lead times (or the pool's defaults while too few were measured)."""
    observed_at: datetime
    launch_failure_limit: int = Field(default=3, ge=1)
    """Failed launches in a row after which a member without an instance fails its pool. The worker-controller's
    setting (`WORKER_LAUNCH_FAILURE_LIMIT`), set on what it read: the control plane does not send it."""


class PoolEvaluation(StrictModel):
    """What the autoscaler reports after evaluating a pool (`POST /api/internal/pools/{id}/evaluation`).

    `expected_version` is the pool's version the evaluation was made on: if the pool changed since (an
    operator scaled, drained or edited it), the control plane refuses it (409) and the autoscaler decides
    again from what it reads now. `decision` is None when nothing is to be recorded (the same "did nothing"
    as last time); `launch`, `resume` and `retire` are what the control plane carries out."""

    expected_version: Count
    observed_at: Instant
    phase: PoolPhase
    capacity: PoolCapacity
    desired_workers: Integer = Field(ge=0, le=MAX_POOL_WORKERS)
    decision: ScalingDecision | None = None
    launch: list[AwsRegion] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    """One region per worker to launch from the pool's template."""
    resume: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    retire: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    retire_then: ScaleDownAction = ScaleDownAction.STOP
    terminate: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    """Workers to drain then terminate whatever `retire_then` says: retired beyond the warm pool, or stopped
    workers the warm pool no longer keeps."""
    warm_up: list[AwsRegion] = Field(default_factory=list, max_length=MAX_POOL_WORKERS)
    """One region per worker to launch into the warm pool (`WorkerSummary.park_when_ready`): created without a
    licence registration, and retired to stopped once its CML is available."""
    error: Annotated[Text, Field(max_length=1000)] | None = None


class PoolForecast(BaseModel):
    """A pool's booked demand against its capacity over the look-ahead (`GET /api/pools/{id}/forecast`)."""

    model_config = ConfigDict(extra="ignore")

    pool_id: str
    at: datetime
    look_ahead_minutes: float
    steps: list[DemandStep] = Field(default_factory=list)
    lead_time: LeadTime = Field(default_factory=LeadTime)
    desired_workers: int = 0
    ready_workers: int = 0
    parked_workers: int = 0
    max_workers: int = 0
    labs_per_worker: int = 0
    cost_per_hour_usd: float | None = None
    """What the pool's counted workers cost per hour running (None: the template is not priced)."""


class ScaleRequest(StrictModel):
    """An operator's `POST /api/pools/{id}/scale`: hold the pool at `workers` (within min and max)."""

    workers: Integer = Field(ge=0, le=MAX_POOL_WORKERS)
    reason: Annotated[Text, Field(max_length=500)] | None = None


__all__ = ["HISTORY_LIMIT", "MAX_POOL_WORKERS", "AllowedHours", "PoolEvaluation", "PoolForecast", "PoolPhase",
           "PoolSpec", "PoolView",
           "PoolWork", "ScaleDownAction", "ScaleRequest", "ScalingAction", "ScalingConfig", "ScalingDecision",
           "ScalingPolicy", "ScalingTrigger", "zone_exists"]
