"""Placement of lablet sessions onto CML workers: the strategies and the decision. No I/O.

The filters and the score are in `placement`, the decision and its reasons in `decisions`. Strategies:
BEST_FIT (highest score, the default), LEAST_UTILIZED, LEAST_LABS, ROUND_ROBIN (a cursor over worker ids),
RANDOM (an injectable RNG). Ties are broken by worker id, so decisions are reproducible.

`Scheduler` keeps the fleet of one scheduling pass: it is built once from the worker list (and the pools),
and `reserve()` updates a worker's allocation after a successful placement so the same pass never
over-commits. Workers are indexed per track and pool in the strategy's order, so a decision usually examines
a handful of workers instead of the whole fleet (see `Scheduler` and bench/placement.py).

Pools (`track_pools`): a session whose track has a pool is placed on the pool's workers first, packed onto the
one its autoscaler would retire last (`packing_rank`, whatever the strategy); when none fits it waits for the
pool if the pool can still give it room (`pool_room`), else it goes to the workers of no pool, by the strategy.
A pool drained or being deleted (`closed_to_sessions`) takes no new session: its sessions go to the workers of
no pool.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import replace
from datetime import datetime
from typing import Any

from lablet_controller.domain.decisions import Decision, clip, no_candidate_reason, refusal_summary
from lablet_controller.domain.placement import (
    Requirements,
    WorkerCandidate,
    base_score,
    reject_capacity,
    reject_license,
    reject_ports,
    reject_state,
    reject_track,
    score,
)
from lablet_controller.domain.track_pools import closed_to_sessions, packing_rank, pool_room, waiting_reason
from lcm_core.domain.pool_capacity import RetirementRank
from lcm_core.domain.pools import PoolView

#: RANDOM draws this many workers before it falls back to listing every eligible one.
RANDOM_PROBES = 32

STRATEGIES = ("best_fit", "least_utilized", "least_labs", "round_robin", "random")

#: Where a worker is indexed: its lab track and its pool (None, None: a general worker).
Group = tuple[str | None, str | None]
GENERAL: Group = (None, None)
#: A strategy's choice among some groups: (the worker chosen, the fitting workers compared, workers examined).
Choice = tuple[WorkerCandidate | None, list[WorkerCandidate], int]


class Scheduler:
    """The fleet of one scheduling pass and the strategy that places sessions on it.

    `decide()` chooses; `reserve()` records a successful reservation (the CPA's answer) so that later
    decisions in the pass see it; `exclude()` drops a worker that lost a race (409) for this pass.
    The round-robin cursor lives on the instance; keep one `Scheduler` across passes and `refresh()` it.

    Index: the workers that pass the static filter (their state: running, CML available, healthy or degraded) are
    kept per group, their track and pool ((None, None) = general), in lists sorted by the strategy's preference; the
    workers of a pool are also kept in the pool's retirement order (`packing_rank`), which a session of the pool
    walks from the back. A decision walks the lists of its candidates from their best end and stops at the first
    worker that fits, so it usually examines a handful of workers instead of the fleet; only "nothing fits" walks
    everything (to say why). The candidates of a session: the workers of no track and of its track; for a session
    whose track has a pool, first the pool's workers, then (when the pool cannot give it room) the workers of no
    pool, of no track or of its track. `reserve()` moves the one changed worker to its new place (bisect). Within a
    pass capacity only shrinks, so requirements that found no worker are remembered and answered at once for the
    next session with the same needs (typically every pending session of one definition when the fleet is full).
    """

    def __init__(self, strategy: str = "best_fit", *, require_license: bool = True,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown scheduling strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.require_license = require_license
        self._rng = rng or random.Random()
        self._clock = clock
        self._cursor = ""
        self.workers: dict[str, WorkerCandidate] = {}
        self.pools: dict[str, PoolView] = {}
        self._now: datetime | None = None
        self._ready: list[WorkerCandidate] = []
        self._ids: list[str] = []
        self._left_out: dict[str, str] = {}
        """Worker id → why it takes nothing in this pass (its state, or a refused reservation), in id order."""
        self._groups: dict[Group, list[tuple[Any, ...]]] = {}
        self._track_groups: dict[str | None, list[Group]] = {}
        """Track → the groups of that track (one per pool, and the one of no pool)."""
        self._track_candidates: dict[str | None, tuple[list[Group], int]] = {}
        """Track → the groups a session of that track (without a pool) may use and their workers' count; kept
        until a group appears or a worker is excluded (a decision costs a lookup)."""
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._packed: dict[Group, list[RetirementRank]] = {}
        """Group of a pool → its workers in retirement order (`packing_rank`), least useful first."""
        self._ranks: dict[str, RetirementRank] = {}
        self._failed: dict[Requirements, Decision] = {}
        """Requirements that found no worker in this pass (sessions of one definition share them)."""
        self._choose: Callable[[Requirements, Sequence[Group], Set[Group] | None], Choice] = (
            self._round_robin if strategy == "round_robin" else self._random if strategy == "random"
            else self._best_of_groups)

    # ---- the fleet of a pass --------------------------------------------------------------------

    def _key(self, worker: WorkerCandidate) -> tuple[Any, ...]:
        """Sort key of a worker under the strategy: lower is preferred; the id breaks ties."""
        if self.strategy == "least_utilized":
            return (round(worker.mean_utilisation(), 9), -worker.base_score, worker.id)
        if self.strategy == "least_labs":
            return (worker.labs_count, round(worker.mean_utilisation(), 9), worker.id)
        return (-worker.base_score, worker.id)

    def _index(self, worker: WorkerCandidate) -> None:
        worker.base_score = base_score(worker)
        key = self._key(worker)
        self._keys[worker.id] = key
        group = (worker.lab_track, worker.pool_id)
        members = self._groups.get(group)
        if members is None:
            members = self._groups[group] = []
            self._track_groups.setdefault(worker.lab_track, []).append(group)
            self._track_candidates.clear()
        bisect.insort(members, key)
        if worker.pool_id is not None:
            rank = self._ranks[worker.id] = packing_rank(worker)
            bisect.insort(self._packed.setdefault(group, []), rank)

    def _unindex(self, worker: WorkerCandidate) -> None:
        key = self._keys.pop(worker.id, None)
        if key is not None:
            members = self._groups[(worker.lab_track, worker.pool_id)]
            del members[bisect.bisect_left(members, key)]
        rank = self._ranks.pop(worker.id, None)
        if rank is not None:
            packed = self._packed[(worker.lab_track, worker.pool_id)]
            del packed[bisect.bisect_left(packed, rank)]

    def refresh(self, workers: Iterable[WorkerCandidate], pools: Iterable[PoolView] = (),
                now: datetime | None = None) -> None:
        """Start a pass over a freshly read fleet and its pools (the round-robin cursor is kept); `now` (wall
        clock) judges the pools' allowed hours."""
        self._now = now
        ordered = sorted(workers, key=lambda w: w.id)
        self.workers = {w.id: w for w in ordered}
        self.pools = {p.id: p for p in pools}
        for worker in ordered:
            pool = self.pools.get(worker.pool_id) if worker.pool_id else None
            worker.max_sessions = pool.scaling.max_labs_per_worker if pool is not None else None
        self._ready, self._left_out = [], {}
        self._groups, self._track_groups, self._track_candidates, self._keys, self._failed = {}, {}, {}, {}, {}
        self._packed, self._ranks = {}, {}
        for worker in ordered:
            why = reject_state(worker)
            if why is None:
                self._ready.append(worker)
                self._index(worker)
            else:
                self._left_out[worker.id] = why
        self._ids = [w.id for w in self._ready]

    def exclude(self, worker_id: str) -> None:
        """Leave out a worker for the rest of the pass (it lost a race or refused the reservation)."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.id in self._keys:
            self._unindex(worker)
            position = bisect.bisect_left(self._ids, worker.id)
            del self._ids[position]
            self._ready.remove(worker)
            self._left_out[worker.id] = "refused reservation"
            self._track_candidates.clear()

    def reserve(self, worker_id: str, req: Requirements) -> None:
        """Count a placement on `worker_id` (so one pass does not over-commit it)."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return
        indexed = worker.id in self._keys
        if indexed:
            self._unindex(worker)
        worker.take(req)
        if indexed:
            self._index(worker)

    # ---- decisions ------------------------------------------------------------------------------

    def _fits(self, worker: WorkerCandidate, req: Requirements) -> bool:
        return (reject_license(worker, req, require_license=self.require_license) is None
                and reject_capacity(worker, req) is None and reject_ports(worker, req) is None)

    def decide(self, req: Requirements) -> Decision:
        started = self._clock()
        failed = self._failed.get(req)
        if failed is not None:  # within a pass capacity only shrinks: what did not fit still does not
            return replace(failed, latency_ms=(self._clock() - started) * 1000)
        pool = self.pools.get(req.pool_id) if req.pool_id is not None else None
        if pool is not None:
            decision = self._decide_pool_first(req, pool, started)
            if not decision.success:
                self._failed[req] = decision
            return decision
        # The session's track has no pool: the workers of no track and of its track (inline: the hot path).
        groups, count = self._track_candidates.get(req.lab_track) or self._candidates_of(req.lab_track)
        chosen, fits, examined = self._choose(req, groups, None)
        if chosen is None:
            decision = Decision(False, None, self._why_nothing_fits(req, None), self.strategy, count,
                                self._since(started))
            self._failed[req] = decision
            return decision
        scores = {w.id: round(score(w, req), 4) for w in fits}
        return Decision(True, chosen.id, f"{self.strategy}: chose {chosen.id} among {count} candidates "
                        f"({examined} examined)", self.strategy, count, (self._clock() - started) * 1000, scores)

    def _candidates_of(self, track: str | None) -> tuple[list[Group], int]:
        groups = self._track_groups.get(None, [])
        if track is not None:
            groups = groups + self._track_groups.get(track, [])
        candidates = self._track_candidates[track] = (groups, self._count(groups))
        return candidates

    def _decide_pool_first(self, req: Requirements, pool: PoolView, started: float) -> Decision:
        """The pool's workers first, packed (`_pack`), unless the pool is drained or being deleted
        (`closed_to_sessions`); if none fits, wait for the pool when it can still give room (`pool_room`), else
        the workers of no pool (of no track, or of the session's track), by the strategy."""
        own: Group = (req.lab_track, pool.id)
        closed = closed_to_sessions(pool)
        examined = count = 0
        if closed is None:
            chosen, fits, examined = self._pack(req, own)
            count = self._count([own])
            if chosen is not None:
                return self._placed(req, chosen, fits, f"among {count} candidates of pool {pool.name}, the one "
                                    f"its autoscaler would retire last ({examined} examined)", count, started,
                                    "packing")
            why_not = pool_room(pool, self._now)
            if why_not is None:
                reason = waiting_reason(pool, self._pool_refusals(req, own), self._now)
                return Decision(False, None, clip(reason), self.strategy, count, self._since(started),
                                waiting_for_pool=pool.id)
            passed_over = f"{why_not} and none of its workers fits"
        else:
            why_not = passed_over = f"pool {pool.name} is {closed}: its workers take no new session"
        others = [GENERAL] if req.lab_track is None else [GENERAL, (req.lab_track, None)]
        chosen, fits, more = self._choose(req, others, set(others))
        count += self._count(others)
        if chosen is None:
            if closed is None:
                why_nothing = self._why_nothing_fits(req, {own, *others})
            else:
                why_nothing = self._why_nothing_fits(req, set(others), (own, f"pool {closed}"))
            return Decision(False, None, clip(f"{why_not}, and {why_nothing}"), self.strategy, count,
                            self._since(started))
        return self._placed(req, chosen, fits, f"among {count} candidates ({examined + more} examined); "
                            f"{passed_over}", count, started, self.strategy)

    def _placed(self, req: Requirements, chosen: WorkerCandidate, fits: list[WorkerCandidate], among: str,
                count: int, started: float, rule: str) -> Decision:
        scores = {w.id: round(score(w, req), 4) for w in fits}
        return Decision(True, chosen.id, f"{rule}: chose {chosen.id} {among}", self.strategy, count,
                        self._since(started), scores)

    def _pack(self, req: Requirements, group: Group) -> Choice:
        """The fitting worker of a pool (`group`) that its autoscaler would retire last: the most labs, then
        the busiest (`packing_rank`, the reverse of the retirement order), so that sessions fill the workers the
        pool keeps and those it retires when it shrinks empty. The strategy does not apply: spreading a pool's
        sessions would leave no worker for it to retire."""
        examined, workers = 0, self.workers
        for rank in reversed(self._packed.get(group, ())):
            examined += 1
            worker = workers[rank[-1]]
            if self._fits(worker, req):
                return worker, [worker], examined
        return None, [], examined

    def _since(self, started: float) -> float:
        return (self._clock() - started) * 1000

    def _count(self, groups: Sequence[Group]) -> int:
        """Candidates of a decision: the workers in a placeable state of its groups."""
        count, indexed = 0, self._groups
        for group in groups:
            members = indexed.get(group)
            if members:
                count += len(members)
        return count

    # The strategies, each `_choose` of one: the choice among the workers of `groups` that fit. `members` is
    # `groups` as a set, or None for a session without a pool: the workers its track admits, which are those
    # of `groups`, are then recognised by the track filter (cheaper than a set lookup).

    def _best_of_groups(self, req: Requirements, groups: Sequence[Group], members: Set[Group] | None) -> Choice:
        """The first fitting worker of each group's list, and the better of them."""
        fits, examined, workers = [], 0, self.workers
        for group in groups:
            for key in self._groups.get(group, ()):
                examined += 1
                worker = workers[key[-1]]
                if self._fits(worker, req):
                    fits.append(worker)
                    break
        return self._better(fits, req), fits, examined

    def _better(self, fits: list[WorkerCandidate], req: Requirements) -> WorkerCandidate | None:
        if not fits:
            return None
        if self.strategy == "best_fit":  # the track bonus may lift the track list's best over the general one
            return min(fits, key=lambda w: (-score(w, req), w.id))
        return min(fits, key=lambda w: self._keys[w.id])

    def _round_robin(self, req: Requirements, groups: Sequence[Group], members: Set[Group] | None) -> Choice:
        """The first fitting worker of the groups after the cursor, in id order (wrapping around)."""
        ids, count = self._ids, len(self._ids)
        start = bisect.bisect_right(ids, self._cursor)
        for offset in range(count):
            worker = self.workers[ids[(start + offset) % count]]
            admitted = (reject_track(worker, req) is None if members is None  # `_admits`, inline: the hot loop
                        else (worker.lab_track, worker.pool_id) in members)
            if admitted and self._fits(worker, req):
                self._cursor = worker.id
                return worker, [worker], offset + 1
        return None, [], count

    def _random(self, req: Requirements, groups: Sequence[Group], members: Set[Group] | None) -> Choice:
        """Uniform over the fitting workers of the groups: rejection sampling, then an exhaustive draw if that
        is unlucky."""
        ready = self._ready
        if not ready:
            return None, [], 0
        for attempt in range(1, RANDOM_PROBES + 1):
            worker = ready[self._rng.randrange(len(ready))]
            admitted = (reject_track(worker, req) is None if members is None  # `_admits`, inline: the hot loop
                        else (worker.lab_track, worker.pool_id) in members)
            if admitted and self._fits(worker, req):
                return worker, [worker], attempt
        found = [w for w in ready if self._admits(w, req, members) and self._fits(w, req)]
        chosen = self._rng.choice(found) if found else None
        return chosen, [chosen] if chosen else [], RANDOM_PROBES + len(ready)

    @staticmethod
    def _admits(worker: WorkerCandidate, req: Requirements, groups: Set[Group] | None) -> bool:
        """Whether `worker` is of `groups` (None: of no track or of the session's track, any pool)."""
        if groups is None:
            return reject_track(worker, req) is None
        return (worker.lab_track, worker.pool_id) in groups

    def _why_nothing_fits(self, req: Requirements, groups: Set[Group] | None,
                          closed: tuple[Group, str] | None = None) -> str:
        """Every worker of the fleet and the first reason it is not a candidate among `groups` (None: of the
        session's track) that fits; `closed`: the group of a pool that takes no new session, and why."""
        refused: dict[str, list[str]] = {}
        for worker_id, left_out in self._left_out.items():
            refused.setdefault(left_out, []).append(self.workers[worker_id].label)
        for worker in self._ready:
            if closed is not None and (worker.lab_track, worker.pool_id) == closed[0]:
                refused.setdefault(closed[1], []).append(worker.label)
                continue
            why = (reject_license(worker, req, require_license=self.require_license)
                   or (None if self._admits(worker, req, groups) else reject_track(worker, req) or "other pool")
                   or reject_capacity(worker, req) or reject_ports(worker, req))
            if why is not None:
                refused.setdefault(why, []).append(worker.label)
        return no_candidate_reason(refused, len(self.workers))

    def _pool_refusals(self, req: Requirements, group: Group) -> str | None:
        """Why none of a pool's workers (those of `group`) takes the session; None when it has none."""
        refused: dict[str, list[str]] = {}
        for worker_id, left_out in self._left_out.items():
            worker = self.workers[worker_id]
            if (worker.lab_track, worker.pool_id) == group:
                refused.setdefault(left_out, []).append(worker.label)
        for worker_id in sorted(key[-1] for key in self._groups.get(group, ())):
            worker = self.workers[worker_id]
            why = (reject_license(worker, req, require_license=self.require_license)
                   or reject_capacity(worker, req) or reject_ports(worker, req))
            if why is not None:
                refused.setdefault(why, []).append(worker.label)
        return refusal_summary(refused) if refused else None
