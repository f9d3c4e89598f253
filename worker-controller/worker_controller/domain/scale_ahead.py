"""The size the sessions booked on a pool's track will need, in time (docs/worker-controller.md, "Scaling
ahead"). Pure functions of what the control plane answered; the moment is the one the pool was read at.

A metal worker takes a quarter of an hour from launch to a licensed, booted CML, and a stopped one several minutes
to resume. Reacting once a class has started makes its first students wait that long; keeping the peak's workers
running costs the peak all day. So the demand the bookings describe (`pool_forecast.demand_steps`) is read at two
horizons: what will be needed within the resume lead time must be resumed (or launched) now, and what will be
needed within the provision lead time, beyond what the stopped workers can cover, must be launched cold now.
Scale-down keeps what the bookings need within the provision lead time: a worker stopped now and needed again
before a new one could be ready would only be paid for twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from lcm_core.domain.pool_capacity import PoolCapacity
from lcm_core.domain.pool_forecast import DemandStep, LeadTime, demand_steps, horizon, peak_workers
from lcm_core.domain.pools import PoolWork, ScalingPolicy

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
    lead = work.lead_time
    return AheadNeed(steps=steps, lead=lead, now=peak_workers(steps, now, now),
                     by_resume=peak_workers(steps, now, horizon(now, lead.resume_seconds + MARGIN_SECONDS,
                                                                cfg.look_ahead_minutes)),
                     by_provision=peak_workers(steps, now, horizon(now, lead.provision_seconds + MARGIN_SECONDS,
                                                                   cfg.look_ahead_minutes)),
                     peak=peak_workers(steps, now, end))


def ahead_size(need: AheadNeed, work: PoolWork, cap: PoolCapacity) -> AheadSize | None:
    """The size to hold now so that every booked timeslot finds its workers ready, or None when the size the
    pool has is enough. Stuck workers serve nobody: the bookings need workers besides them. Stopped workers
    (`parked`) are resumed for what is needed within the resume lead time; what the stopped workers cannot
    cover within the provision lead time is launched now."""
    size, stuck, parked = work.pool.desired_workers, cap.stuck, cap.parked
    useful = max(0, size - stuck)
    resume_now = max(0, min(parked, need.by_resume - useful))
    cold = max(0, need.by_provision - useful - parked)
    if not resume_now and not cold:
        return None
    lead = need.lead
    parts = []
    if resume_now:
        parts.append(f"bookings need {need.by_resume} worker(s) within the resume lead time "
                     f"({lead.resume_seconds / 60:.1f} min)")
    if cold:
        parts.append(f"{need.by_provision} within the provision lead time ({lead.provision_seconds / 60:.1f} min), "
                     f"{parked} stopped to resume: {cold} to launch now")
    return AheadSize(size=size + resume_now + cold, cold=cold,
                     reason=f"{'; '.join(parts)} (the pool has {size}{f', {stuck} stuck' if stuck else ''})")


def ahead_floor(need: AheadNeed, cap: PoolCapacity) -> int:
    """The size a scale-down keeps: what the bookings need before a launched worker could be ready again."""
    return need.by_provision + cap.stuck if need.by_provision else 0


__all__ = ["MARGIN_SECONDS", "AheadNeed", "AheadSize", "ahead_floor", "ahead_need", "ahead_size"]
