"""The size the sessions booked on a pool's track will need, in time (docs/worker-controller.md, "Scaling
ahead"). Pure functions of what the control plane answered; the moment is the one the pool was read at.

A metal worker takes a quarter of an hour from launch to a licensed, booted CML, and a stopped one several minutes
to resume. Reacting once a class has started makes its first students wait that long; keeping the peak's workers
running costs the peak all day. So the demand the bookings describe (`pool_forecast.demand_steps`) is read at two
horizons: what will be needed within the resume lead time must be resumed (or launched) now, and what will be
needed within the provision lead time, beyond what the stopped workers can cover, must be launched cold now.
Both horizons reach `ready_ahead_minutes` further: a session is placed, and its lab imported and booted, before
its timeslot starts, so its worker must serve that much earlier. A worker on its way counts toward a horizon only
if it will serve by then (when its launch or resume was asked for, plus the lead time of that kind).
Scale-down keeps what the bookings need within the provision lead time: a worker stopped now and needed again
before a new one could be ready would only be paid for twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lcm_core.domain.pool_capacity import MemberRole, PoolCapacity, member_role, on_its_way, serving
from lcm_core.domain.pool_forecast import DemandStep, LeadTime, demand_steps, peak_workers
from lcm_core.domain.pools import PoolWork, ScalingPolicy
from lcm_core.domain.workers import WorkerSummary

#: Slack added to a lead time: the autoscaler's evaluation interval and the scheduler's next pass, so that a
#: worker ready "just in time" is also placed on in time.
MARGIN_SECONDS = 120.0
#: Policies that count bookings (SCHEDULED follows its hours; NONE is manual).
FORECASTING_POLICIES = frozenset({ScalingPolicy.CAPACITY_BASED, ScalingPolicy.LAB_COUNT_BASED,
                                  ScalingPolicy.HYBRID})


@dataclass(frozen=True)
class AheadNeed:
    """What the bookings need of the pool, read at the horizons that matter now."""

    steps: list[DemandStep]
    lead: LeadTime
    resume_horizon: datetime
    """Until when a worker resumed now will not be ready for the sessions it must serve."""
    provision_horizon: datetime
    """Until when a worker launched now will not be ready for them."""
    now: int
    """Workers the sessions booked for now need."""
    by_resume: int
    """The most workers needed before a resumed worker would be ready."""
    by_provision: int
    """The most workers needed before a launched worker would be ready."""
    peak: int
    """The most workers needed within the look-ahead."""


@dataclass(frozen=True)
class AheadSize:
    """The size the bookings ask for now, how many of the workers to add must be launched cold (resuming them
    later would be too late), and why."""

    size: int
    cold: int
    reason: str


def ahead_need(work: PoolWork) -> AheadNeed | None:
    """The bookings' need, or None when the pool does not scale ahead (a policy that ignores bookings, or no
    look-ahead)."""
    pool, now = work.pool, work.observed_at
    cfg = pool.scaling
    if cfg.policy not in FORECASTING_POLICIES or cfg.look_ahead_minutes <= 0:
        return None
    end = now + timedelta(minutes=cfg.look_ahead_minutes)
    steps = demand_steps(work.bookings, now, end, labs_per_worker=cfg.max_labs_per_worker,
                         per_worker=work.template_capacity)
    # Not capped by the look-ahead: the steps end there anyway, and a worker on its way is counted against
    # the moment it will serve by (capping the horizon would leave a just-launched worker uncounted, and
    # launch another every evaluation).
    lead, early = work.lead_time, MARGIN_SECONDS + cfg.ready_ahead_minutes * 60
    by_resume = now + timedelta(seconds=lead.resume_seconds + early)
    by_provision = now + timedelta(seconds=lead.provision_seconds + early)
    return AheadNeed(steps=steps, lead=lead, resume_horizon=by_resume, provision_horizon=by_provision,
                     now=peak_workers(steps, now, now), by_resume=peak_workers(steps, now, by_resume),
                     by_provision=peak_workers(steps, now, by_provision), peak=peak_workers(steps, now, end))


def serves_by(row: WorkerSummary, lead: LeadTime, now: datetime) -> datetime | None:
    """When a counted worker will serve: now if it does, when its launch or resume was asked for plus that
    kind's lead time if it is on its way (a worker on its way without a known start: a launch from now), never
    if it is stuck."""
    if serving(row):
        return now
    if not on_its_way(row):
        return None
    since = row.getting_ready_since or now
    return max(now, since + timedelta(seconds=lead.seconds(row.getting_ready_by)))


def ahead_size(need: AheadNeed, work: PoolWork, cap: PoolCapacity) -> AheadSize | None:
    """The size to hold now so that every booked timeslot finds its workers ready, or None when the size the
    pool has is enough. A counted worker counts toward a horizon only if it serves by then (stuck ones never).
    Stopped workers (`parked`) are resumed for what is needed within the resume horizon; what the stopped
    workers cannot cover within the provision horizon is launched now."""
    size, parked, now = work.pool.desired_workers, cap.parked, work.observed_at
    counted = [row for row in work.workers if member_role(row) is MemberRole.ACTIVE]
    ready_at = [serves_by(row, need.lead, now) for row in counted]
    by_resume = sum(1 for at in ready_at if at is not None and at <= need.resume_horizon)
    by_provision = sum(1 for at in ready_at if at is not None and at <= need.provision_horizon)
    resume_now = max(0, min(parked, need.by_resume - by_resume))
    cold = max(0, need.by_provision - by_provision - parked)
    if not resume_now and not cold:
        return None  # more workers counted than the size (kept for their sessions) is no reason to grow
    wanted = max(size, len(counted) + resume_now + cold)
    if wanted == size:
        return None
    lead = need.lead
    parts = []
    if resume_now:
        parts.append(f"bookings need {need.by_resume} worker(s) within the resume lead time "
                     f"({lead.resume_seconds / 60:.1f} min) and {by_resume} will serve by then")
    if cold:
        parts.append(f"{need.by_provision} within the provision lead time ({lead.provision_seconds / 60:.1f} min), "
                     f"{by_provision} will serve by then and {parked} stopped to resume: {cold} to launch now")
    stuck = f", {cap.stuck} stuck" if cap.stuck else ""
    return AheadSize(size=wanted, cold=min(cold, wanted - size),
                     reason=f"{'; '.join(parts)} (the pool has {size}{stuck}; ready "
                            f"{work.pool.scaling.ready_ahead_minutes:g} min before each timeslot)")


def ahead_floor(need: AheadNeed, cap: PoolCapacity) -> int:
    """The size a scale-down keeps: what the bookings need before a launched worker could be ready again."""
    return need.by_provision + cap.stuck if need.by_provision else 0


__all__ = ["MARGIN_SECONDS", "AheadNeed", "AheadSize", "ahead_floor", "ahead_need", "ahead_size"]
