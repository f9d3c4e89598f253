"""The size a pool's policy asks for: one rule per policy, the allowed hours, the cooldowns and the bounds
(docs/worker-controller.md, "The autoscaler"). Pure functions of what the control plane answered; the moment
is the one the pool was read at. `autoscaling.plan_pool` then brings the pool's workers to that size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from lcm_core.domain.pool_capacity import PoolCapacity, workers_for
from lcm_core.domain.pools import PoolView, PoolWork, ScalingConfig, ScalingPolicy, ScalingTrigger
from worker_controller.domain.scale_ahead import AheadNeed, ahead_floor, ahead_size


@dataclass(frozen=True)
class SizeProposal:
    """The size a policy asks for, and why (`rule` is a short stable name of the reason)."""

    size: int
    reason: str
    rule: str
    trigger: ScalingTrigger = ScalingTrigger.POLICY
    for_waiting: bool = False
    """Sessions are waiting or booked for this growth: the scale-up cooldown does not hold it (`_cooled`)."""
    cold: int = 0
    """Of the workers to add, how many must be launched even if stopped ones could be resumed: resumed later
    they would be ready in time, but launched later they would not (`scale_ahead.ahead_size`)."""


def _minutes_left(since: datetime | None, cooldown_minutes: float, now: datetime) -> float:
    if since is None:
        return 0.0
    left = since + timedelta(minutes=cooldown_minutes) - now
    return max(0.0, left.total_seconds() / 60)


def _lab_count(work: PoolWork, cap: PoolCapacity, held: int) -> tuple[SizeProposal | None, SizeProposal | None]:
    """(scale-up proposal, scale-down proposal) of the lab-count rule; None where it does not ask. Stuck
    workers (`PoolCapacity.stuck`) take no session: the sessions need workers besides them. Sessions that wait
    for room the count would not add (the workers are full of CPU or memory before they are full of sessions)
    are given it as `_capacity` gives it (`_room_for_waiting`): the scheduler has told them the pool grows."""
    pool = work.pool
    cfg, size = pool.scaling, pool.desired_workers
    waiting = work.waiting.sessions
    labs = held + waiting
    needed = workers_for(labs, cfg.max_labs_per_worker)
    up = down = None
    if needed > size - cap.stuck:
        stuck = f", {cap.stuck} of them stuck" if cap.stuck else ""
        up = SizeProposal(needed + cap.stuck, f"{held} session(s) held and {waiting} waiting need {needed} "
                          f"worker(s) at {cfg.max_labs_per_worker} per worker (the pool has {size}{stuck})",
                          "labs_above_max", for_waiting=waiting > 0)
    elif size > 0 and labs / size < cfg.min_labs_per_worker and needed < size and not waiting:
        down = SizeProposal(needed, f"{labs} session(s) on {size} worker(s) is {labs / size:.1f} per worker, "
                                    f"below {cfg.min_labs_per_worker}: {needed} worker(s) are enough",
                            "labs_below_min")
    room = _room_for_waiting(work, cap)
    if room is not None and (up is None or room.size > up.size):
        up = room
    return up, down


def _room_for_waiting(work: PoolWork, cap: PoolCapacity) -> SizeProposal | None:
    """The workers to add for the sessions waiting for the pool, by the room they ask (in workers of the
    pool's template) less the room already coming: workers on their way and ready workers still empty, which
    the next scheduling pass fills. None when nothing waits or what is coming is enough, so that a session no
    worker can hold does not launch worker after worker."""
    waiting, size = work.waiting, work.pool.desired_workers
    if not waiting.sessions:
        return None
    per_worker = work.template_capacity
    extra = max(1, math.ceil(waiting.cpu_cores / per_worker.cpu_cores) if per_worker.cpu_cores else 1,
                math.ceil(waiting.memory_gb / per_worker.memory_gb) if per_worker.memory_gb else 1)
    coming = cap.on_the_way + cap.empty_ready
    if extra <= coming:
        return None
    return SizeProposal(size + extra - coming,
                        f"{waiting.sessions} session(s) wait for room ({waiting.cpu_cores:g} cores, "
                        f"{waiting.memory_gb:g} GB): {extra - coming} more worker(s)", "sessions_waiting",
                        for_waiting=True)


def _capacity(pool: PoolView, cap: PoolCapacity, work: PoolWork) -> tuple[SizeProposal | None,
                                                                        SizeProposal | None]:
    """(scale-up proposal, scale-down proposal) of the utilisation rule; sessions waiting for room come first
    (`_room_for_waiting`): they do not fit, whatever the averages say."""
    cfg, size = pool.scaling, pool.desired_workers
    on_the_way = cap.on_the_way
    if work.waiting.sessions:
        return _room_for_waiting(work, cap), None
    cpu, memory = cap.avg_cpu_percent, cap.avg_memory_percent
    if cpu is None and memory is None:
        return None, None
    if (cpu or 0) > cfg.cpu_scale_up_percent or (memory or 0) > cfg.memory_scale_up_percent:
        return SizeProposal(size + 1, f"average CPU {_pct(cpu)} / memory {_pct(memory)} above "
                                      f"{cfg.cpu_scale_up_percent:g}% / {cfg.memory_scale_up_percent:g}%",
                            "utilisation_high"), None
    if cpu is None or memory is None or size <= 1 or on_the_way:
        return None, None
    if cpu < cfg.cpu_scale_down_percent and memory < cfg.memory_scale_down_percent:
        # One worker fewer must not push the others over the scale-up thresholds (no flapping).
        spread = size / (size - 1)
        if cpu * spread < cfg.cpu_scale_up_percent and memory * spread < cfg.memory_scale_up_percent:
            return None, SizeProposal(size - 1, f"average CPU {_pct(cpu)} / memory {_pct(memory)} below "
                                                f"{cfg.cpu_scale_down_percent:g}% / "
                                                f"{cfg.memory_scale_down_percent:g}%", "utilisation_low")
    return None, None


def _pct(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.0f}%"


def policy_size(work: PoolWork, cap: PoolCapacity, held: int, need: AheadNeed | None = None) -> SizeProposal:
    """The size the pool's policy asks for now (before the bounds), with its reason. `need`: what the
    bookings need ahead (`scale_ahead.ahead_need`), for the policies that count them."""
    pool, now = work.pool, work.observed_at
    cfg, size = pool.scaling, pool.desired_workers
    hours = cfg.allowed_hours
    inside = hours is None or hours.contains(now)
    if cfg.policy is ScalingPolicy.NONE:
        return SizeProposal(size, f"policy none: the pool keeps the size it was given ({size})", "manual")
    if cfg.policy is ScalingPolicy.SCHEDULED:
        if hours is None:
            return SizeProposal(size, f"scheduled policy without allowed hours: keeps {size}", "no_schedule")
        if inside:
            wish = SizeProposal(cfg.max_workers, f"inside the allowed hours ({hours.describe()}): the maximum",
                                "scheduled_in")
        else:
            wish = SizeProposal(cfg.min_workers, f"outside the allowed hours ({hours.describe()}): the minimum",
                                "scheduled_out")
        # The cooldowns hold it too: an operator's scale is not undone the next moment.
        return wish if wish.size == size else _cooled(wish, pool, now, up=wish.size > size)
    if not inside:
        assert hours is not None
        return SizeProposal(size, f"outside the allowed hours ({hours.describe()}): no automatic scaling",
                            "outside_hours")
    proposals: list[tuple[SizeProposal | None, SizeProposal | None]] = []
    if cfg.policy in (ScalingPolicy.LAB_COUNT_BASED, ScalingPolicy.HYBRID):
        proposals.append(_lab_count(work, cap, held))
    if cfg.policy in (ScalingPolicy.CAPACITY_BASED, ScalingPolicy.HYBRID):
        proposals.append(_capacity(pool, cap, work))
    ups = [up for up, _ in proposals if up is not None]
    downs = [down for _, down in proposals if down is not None]
    ahead = ahead_size(need, work, cap) if need is not None else None
    if ahead is not None:
        ups.append(SizeProposal(ahead.size, ahead.reason, "bookings_ahead", for_waiting=True, cold=ahead.cold))
    if ups:
        wish = max(ups, key=lambda p: (p.size, p.cold))
        if ahead is not None and wish.rule != "bookings_ahead":
            wish = SizeProposal(wish.size, wish.reason, wish.rule, wish.trigger, wish.for_waiting,
                                cold=min(ahead.cold, wish.size - size))
        return _cooled(wish, pool, now, up=True)
    if downs and len(downs) == len(proposals) and size > cfg.min_workers:  # every rule agrees (HYBRID has two)
        wish = max(downs, key=lambda p: p.size)
        floor = ahead_floor(need, cap) if need is not None else 0
        if floor >= size:
            return SizeProposal(size, f"{wish.reason}, but the sessions booked within the provision lead time "
                                      f"need {floor} worker(s): keeps {size}", "bookings_keep")
        if floor > wish.size:
            wish = SizeProposal(floor, f"{wish.reason}; the sessions booked within the provision lead time need "
                                       f"{floor}", wish.rule)
        return _cooled(wish, pool, now, up=False)
    return SizeProposal(size, f"{_within(cfg)}: keeps {size}", "steady")


def _within(cfg: ScalingConfig) -> str:
    if cfg.policy is ScalingPolicy.LAB_COUNT_BASED:
        return f"sessions per worker within {cfg.min_labs_per_worker}-{cfg.max_labs_per_worker}"
    if cfg.policy is ScalingPolicy.CAPACITY_BASED:
        return "utilisation within the thresholds (or not measured yet)"
    return "neither sessions per worker nor utilisation asks for a change"


def _cooled(wish: SizeProposal, pool: PoolView, now: datetime, *, up: bool) -> SizeProposal:
    """The wish, unless a cooldown holds it (a policy's or an operator's scaling both count, so that the
    policy neither flaps nor undoes an operator's scale at once):
    - scale-up waits `scale_up_cooldown` after the last scaling of either kind;
    - scale-down waits `scale_down_cooldown` after the last scale-down, and `scale_down_delay_after_add` after
      the last scale-up (workers just added are not retired before they had a chance to be used).

    A scale-up for sessions that wait for the pool, or are booked on it, is not held: the cooldown lets a noisy
    measure settle before it is trusted again, but sessions are counted exactly (with the workers already on
    their way, so the pool cannot overshoot), and a class booked one session at a time would otherwise grow one
    worker per cooldown while its students wait."""
    cfg = pool.scaling
    if up and wish.for_waiting:
        return wish
    if up:
        last = max((t for t in (pool.last_scale_up_at, pool.last_scale_down_at) if t is not None), default=None)
        left, what = _minutes_left(last, cfg.scale_up_cooldown_minutes, now), "the scale-up cooldown"
    else:
        after_down = _minutes_left(pool.last_scale_down_at, cfg.scale_down_cooldown_minutes, now)
        after_add = _minutes_left(pool.last_scale_up_at, cfg.scale_down_delay_after_add_minutes, now)
        left, what = max((after_down, "the scale-down cooldown"), (after_add, "the delay after the last scale-up"))
    if left <= 0:
        return wish
    kind = "up" if up else "down"
    return SizeProposal(pool.desired_workers, f"would scale {kind} to {wish.size} ({wish.reason}) but "
                        f"{what} has {left:.1f} min left", f"cooldown_{kind}")


def bounded(proposal: SizeProposal, cfg: ScalingConfig, desired: int) -> SizeProposal:
    """The proposal within min and max. A size the policy moved, and that the bounds only limited, is still
    the policy's (it starts a cooldown); a size only the bounds moved (the operator changed them) is theirs."""
    size = min(max(proposal.size, cfg.min_workers), cfg.max_workers)
    if size == proposal.size:
        return proposal
    raised = size > proposal.size
    note = f"{proposal.reason}; {'raised to the minimum' if raised else 'held at the maximum'} of {size}"
    if (size - desired) * (proposal.size - desired) > 0:
        return SizeProposal(size, note, proposal.rule, proposal.trigger, proposal.for_waiting,
                            min(proposal.cold, max(0, size - desired)))
    return SizeProposal(size, note, "below_min" if raised else "above_max", ScalingTrigger.BOUNDS)


__all__ = ["SizeProposal", "bounded", "policy_size"]
