"""Placement of lablet sessions onto CML workers: the strategies and the decision. No I/O.

The filters and the score are in `placement`. Strategies: BEST_FIT (highest score, the default),
LEAST_UTILIZED, LEAST_LABS, ROUND_ROBIN (a cursor over worker ids), RANDOM (an injectable RNG). Ties are
broken by worker id, so decisions are reproducible.

`Scheduler` keeps the fleet of one scheduling pass: it is built once from the worker list, and `reserve()`
updates a worker's allocation after a successful placement so the same pass never over-commits. Workers
are indexed per track in the strategy's order, so a decision usually examines a handful of workers instead
of the whole fleet (see `Scheduler` and bench/placement.py).
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

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

#: RANDOM draws this many workers before it falls back to listing every eligible one.
RANDOM_PROBES = 32

STRATEGIES = ("best_fit", "least_utilized", "least_labs", "round_robin", "random")

#: Workers named per reason in a "no candidate" reason (the rest are counted).
NAMED_PER_REASON = 3
#: Longest reason recorded on a session (the contract's limit on `SchedulingDecision.reason`).
MAX_REASON = 1000


# ---- decisions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Outcome of one placement (the contract's SchedulingDecision)."""

    success: bool
    worker_id: str | None
    reason: str
    strategy: str
    candidates_evaluated: int
    latency_ms: float
    scores: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"success": self.success, "worker_id": self.worker_id, "reason": self.reason,
                "strategy": self.strategy, "candidates_evaluated": self.candidates_evaluated,
                "latency_ms": round(self.latency_ms, 3), "scores": self.scores}


def no_candidate_reason(refused: Mapping[str, Sequence[str]], total: int) -> str:
    """Why no worker took a session, naming the workers so an operator sees what to fix, most frequent
    reason first: "no eligible worker among 3: 2 workers: health unreachable (cml-1, cml-2); worker cml-3:
    insufficient cpu". Past `NAMED_PER_REASON` workers a reason is counted, not listed."""
    if total == 0:
        return "no workers known"
    parts = []
    for why, names in sorted(refused.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(names) == 1:
            parts.append(f"worker {names[0]}: {why}")
        else:
            shown = ", ".join(names[:NAMED_PER_REASON]) + (", ..." if len(names) > NAMED_PER_REASON else "")
            parts.append(f"{len(names)} workers: {why} ({shown})")
    reason = f"no eligible worker among {total}: {'; '.join(parts)}"
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + "..."


class Scheduler:
    """The fleet of one scheduling pass and the strategy that places sessions on it.

    `decide()` chooses; `reserve()` records a successful reservation (the CPA's answer) so that later
    decisions in the pass see it; `exclude()` drops a worker that lost a race (409) for this pass.
    The round-robin cursor lives on the instance; keep one `Scheduler` across passes and `refresh()` it.

    Index: the workers that pass the static filter (their state: running, CML available, healthy or
    degraded) are kept per track (None =
    general) in lists sorted by the strategy's preference. A decision walks the general list and the
    session's track list from their best end and stops at the first worker that fits, so it usually
    examines a handful of workers instead of the fleet; only "nothing fits" walks everything (to say why).
    `reserve()` moves the one changed worker to its new place (bisect). Within a pass capacity only shrinks,
    so requirements that found no worker are remembered and answered at once for the next session with the
    same needs (typically every pending session of one definition when the fleet is full).
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
        self._ready: list[WorkerCandidate] = []
        self._ids: list[str] = []
        self._static_rejections: dict[str, list[str]] = {}
        """Reason → the workers (names) refused for their state, in id order."""
        self._groups: dict[str | None, list[tuple[Any, ...]]] = {}
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._failed: dict[Requirements, Decision] = {}
        """Requirements that found no worker in this pass (sessions of one definition share them)."""

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
        bisect.insort(self._groups.setdefault(worker.lab_track, []), key)

    def _unindex(self, worker: WorkerCandidate) -> None:
        key = self._keys.pop(worker.id, None)
        if key is not None:
            group = self._groups[worker.lab_track]
            del group[bisect.bisect_left(group, key)]

    def refresh(self, workers: Iterable[WorkerCandidate]) -> None:
        """Start a pass over a freshly read fleet (the round-robin cursor is kept)."""
        ordered = sorted(workers, key=lambda w: w.id)
        self.workers = {w.id: w for w in ordered}
        self._ready, self._static_rejections = [], {}
        self._groups, self._keys, self._failed = {}, {}, {}
        for worker in ordered:
            why = reject_state(worker)
            if why is None:
                self._ready.append(worker)
                self._index(worker)
            else:
                self._static_rejections.setdefault(why, []).append(worker.label)
        self._ids = [w.id for w in self._ready]

    def exclude(self, worker_id: str) -> None:
        """Leave out a worker for the rest of the pass (it lost a race or refused the reservation)."""
        worker = self.workers.get(worker_id)
        if worker is not None and worker.id in self._keys:
            self._unindex(worker)
            position = bisect.bisect_left(self._ids, worker.id)
            del self._ids[position]
            self._ready.remove(worker)
            self._static_rejections.setdefault("refused reservation", []).append(worker.label)

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

    def _eligible(self, worker: WorkerCandidate, req: Requirements) -> bool:
        return reject_track(worker, req) is None and self._fits(worker, req)

    def decide(self, req: Requirements) -> Decision:
        started = self._clock()
        failed = self._failed.get(req)
        if failed is not None:  # within a pass capacity only shrinks: what did not fit still does not
            return replace(failed, latency_ms=(self._clock() - started) * 1000)
        if self.strategy == "round_robin":
            chosen, examined = self._round_robin(req)
            fits = [chosen] if chosen else []
        elif self.strategy == "random":
            chosen, examined = self._random(req)
            fits = [chosen] if chosen else []
        else:
            fits, examined = self._best_of_groups(req)
            chosen = self._better(fits, req)
        if chosen is None:
            reason = self._why_nothing_fits(req)  # walks every worker that passed the static filters
            decision = Decision(False, None, reason, self.strategy, self._pool_size(req),
                                (self._clock() - started) * 1000)
            self._failed[req] = decision
            return decision
        scores = {w.id: round(score(w, req), 4) for w in fits}
        pool = self._pool_size(req)
        return Decision(True, chosen.id, f"{self.strategy}: chose {chosen.id} among {pool} candidates "
                        f"({examined} examined)", self.strategy, pool, (self._clock() - started) * 1000, scores)

    def _pool_size(self, req: Requirements) -> int:
        """Candidates of a session: the workers in a placeable state of its track and of no track."""
        size = len(self._groups.get(None, ()))
        return size + (len(self._groups.get(req.lab_track, ())) if req.lab_track is not None else 0)

    def _best_of_groups(self, req: Requirements) -> tuple[list[WorkerCandidate], int]:
        """The first fitting worker of the general list and of the session's track list."""
        groups = [self._groups.get(None, [])]
        if req.lab_track is not None:
            groups.append(self._groups.get(req.lab_track, []))
        fits, examined, workers = [], 0, self.workers
        for group in groups:
            for key in group:
                examined += 1
                worker = workers[key[-1]]
                if self._fits(worker, req):
                    fits.append(worker)
                    break
        return fits, examined

    def _better(self, fits: list[WorkerCandidate], req: Requirements) -> WorkerCandidate | None:
        if not fits:
            return None
        if self.strategy == "best_fit":  # the track bonus may lift the track list's best over the general one
            return min(fits, key=lambda w: (-score(w, req), w.id))
        return min(fits, key=lambda w: self._keys[w.id])

    def _round_robin(self, req: Requirements) -> tuple[WorkerCandidate | None, int]:
        """The first eligible worker after the cursor, in id order (wrapping around)."""
        ids, count = self._ids, len(self._ids)
        start = bisect.bisect_right(ids, self._cursor)
        for offset in range(count):
            worker = self.workers[ids[(start + offset) % count]]
            if self._eligible(worker, req):
                self._cursor = worker.id
                return worker, offset + 1
        return None, count

    def _random(self, req: Requirements) -> tuple[WorkerCandidate | None, int]:
        """Uniform over the eligible workers: rejection sampling, then an exhaustive draw if that is unlucky."""
        ready = self._ready
        if not ready:
            return None, 0
        for attempt in range(1, RANDOM_PROBES + 1):
            worker = ready[self._rng.randrange(len(ready))]
            if self._eligible(worker, req):
                return worker, attempt
        eligible = [w for w in ready if self._eligible(w, req)]
        return (self._rng.choice(eligible) if eligible else None), RANDOM_PROBES + len(ready)

    def _why_nothing_fits(self, req: Requirements) -> str:
        refused = {why: list(names) for why, names in self._static_rejections.items()}
        for worker in self._ready:
            why = (reject_license(worker, req, require_license=self.require_license) or reject_track(worker, req)
                   or reject_capacity(worker, req) or reject_ports(worker, req))
            if why is not None:
                refused.setdefault(why, []).append(worker.label)
        return no_candidate_reason(refused, len(self.workers))
