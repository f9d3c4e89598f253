"""What the scheduler judges about the pool of a lab track (docs/lablet-controller.md, 'Scheduling'). No I/O.

A session whose track has a pool is placed on the pool's workers first. When none of them fits, `pool_room`
says whether the pool can still give it room: then the session waits for the pool (the control plane keeps the
decision on the session and wakes the pool's autoscaler, which counts waiting sessions as demand), and
`waiting_reason` says so; otherwise `pool_room` says why not and the general workers take the session.
Among the pool's workers that fit, the session is packed onto the one the autoscaler would retire last
(`packing_rank`), whatever the strategy: a pool that has more workers than its sessions need empties the ones
it will retire. A pool an operator drained or is deleting takes no new session (`closed_to_sessions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from lablet_controller.domain.placement import WorkerCandidate
from lcm_core.domain.enums import HealthStatus
from lcm_core.domain.pool_capacity import RetirementRank, retirement_rank
from lcm_core.domain.pools import PoolPhase, PoolView, ScalingPolicy


def pools_by_track(pools: Iterable[PoolView]) -> dict[str, PoolView]:
    """The pool of each lab track. There is one per track; should the control plane list two for one track
    (one being deleted while its successor is created), the one not being deleted wins, then the lowest id."""
    chosen: dict[str, PoolView] = {}
    for pool in sorted(pools, key=lambda p: (_leaving(p), p.id)):
        chosen.setdefault(pool.lab_track, pool)
    return chosen


def _leaving(pool: PoolView) -> bool:
    return pool.deleting or pool.phase in (PoolPhase.TERMINATING, PoolPhase.TERMINATED)


def packing_rank(worker: WorkerCandidate) -> RetirementRank:
    """A pool's worker's place in its autoscaler's retirement order (`lcm_core.domain.pool_capacity`,
    `retirement_rank`: least useful first). The scheduler packs a pool's sessions in the reverse order: onto
    the fitting worker the autoscaler would retire last, the one with the most labs (its sessions), then the
    busiest, then by name, so that the workers it retires when the pool shrinks are the ones left empty.
    A candidate in the index passed the state filter (running, CML available, healthy or degraded), so it
    serves exactly when it is licensed (its phase is READY or ACTIVE)."""
    return retirement_rank(serving=worker.licensed, healthy=worker.health_status == HealthStatus.HEALTHY,
                           licensed=worker.licensed, labs=worker.labs_count, cpu_percent=worker.cpu_percent,
                           name=worker.name or "", worker_id=worker.id)


def grows_for_demand(pool: PoolView, now: datetime | None = None) -> bool:
    """Whether the pool's autoscaler may add a worker now: it scales automatically (a policy that reacts to
    demand), the pool is held below its maximum, and `now` lies in its allowed hours (outside them it does not
    grow: its sessions would wait until the window opens)."""
    scaling = pool.scaling
    if scaling.policy in (ScalingPolicy.NONE, ScalingPolicy.SCHEDULED):
        return False
    hours = scaling.allowed_hours
    if hours is not None and now is not None and not hours.contains(now):
        return False
    return pool.desired_workers < scaling.max_workers


def closed_to_sessions(pool: PoolView) -> str | None:
    """Why the pool's workers take no new session ("draining", "being deleted", "terminated"), or None when they
    do: an operator drained it or is deleting it, and its workers go once empty, so a session placed there would
    hold one back. Its autoscaler drains each of them soon after; the scheduler does not wait for that. A failed
    pool failed to grow: the workers it has still serve."""
    if pool.deleting or pool.phase is PoolPhase.TERMINATING:
        return "being deleted"
    if pool.phase is PoolPhase.TERMINATED:
        return "terminated"
    if pool.draining or pool.phase is PoolPhase.DRAINING:
        return "draining"
    return None


def pool_room(pool: PoolView, now: datetime | None = None) -> str | None:
    """Whether `pool` can still give room to a session none of its workers fits now: None if it can (the
    session waits for it), else why not (the session goes to the general workers).

    It can when it is open (not draining, not being deleted, not terminated, not failed) and either some of
    its members are still on their way (counted toward its size but not serving yet: their capacity is
    coming) or its autoscaler may add a worker (policy other than `none`, `desired_workers < max_workers`).
    A pool on its way out is not waited for even with members on their way: they will not take sessions."""
    name = f"pool {pool.name}"
    closed = closed_to_sessions(pool)
    if closed is not None:
        return f"{name} is {closed}"
    if pool.phase is PoolPhase.FAILED:
        return f"{name} has failed"
    # Members on their way (`lcm_core.domain.pool_capacity.on_its_way`) bring capacity; a stuck one is not
    # counted there, so it is not waited for.
    if pool.capacity.on_the_way > 0 or grows_for_demand(pool, now):
        return None
    if pool.scaling.policy is ScalingPolicy.NONE:
        return f"{name} is sized by hand (scaling policy none) and has no worker on its way"
    if pool.scaling.policy is ScalingPolicy.SCHEDULED:
        return f"{name} is sized by its schedule and has no worker on its way"
    hours = pool.scaling.allowed_hours
    if hours is not None and now is not None and not hours.contains(now):
        return f"{name} does not grow outside its allowed hours ({hours.describe()})"
    return f"{name} is at its maximum of {pool.scaling.max_workers} workers"


def waiting_reason(pool: PoolView, refusals: str | None, now: datetime | None = None) -> str:
    """Why a session waits for `pool`: its size, what is coming, and why none of its workers fits now
    (`refusals`: the per-worker reasons; None when it has no worker at all)."""
    size = f"{pool.capacity.workers} of max {pool.scaling.max_workers} workers"
    on_the_way = pool.capacity.on_the_way
    if on_the_way:
        size += f", {on_the_way} on the way"
    asked = " was asked to scale up" if grows_for_demand(pool, now) else ""
    fits = f"none of its workers fits: {refusals}" if refusals else "it has no worker yet"
    return f"waiting for capacity: pool {pool.name} ({size}){asked}; {fits}"
