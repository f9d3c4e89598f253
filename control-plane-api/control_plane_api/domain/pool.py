"""The WorkerPool aggregate (docs/pools.md): the capacity of one lab track, held between a minimum and a maximum
of workers launched from one template.

Its fields are those everyone reads (`lcm_core.domain.pools.PoolView`) plus its bounded histories and the
storage's fencing tokens. Operators set its spec, scale, drain and delete it; the worker-controller's autoscaler
reports each evaluation (`apply_evaluation`): the phase, the capacity, the size and the decision taken. Every
behaviour mutates the pool in memory and returns the domain events it caused; no I/O here.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import FenceTokens
from control_plane_api.domain.worker import worker_id_for
from control_plane_api.domain.worker_state import STATE_HISTORY_LIMIT, StateChange
from lcm_core.domain.pools import (
    HISTORY_LIMIT,
    Figure,
    PoolEvaluation,
    PoolPhase,
    PoolSpec,
    PoolView,
    ScalingAction,
    ScalingDecision,
    ScalingTrigger,
)
from lcm_core.errors import ConflictError, InvalidError

#: The fields an operator sets (`PoolSpec`); an update replaces them all.
SPEC_FIELDS = tuple(PoolSpec.model_fields)
#: Triggers after which the policy waits for its cooldown: its own decisions and an operator's scale.
COOLDOWN_TRIGGERS = frozenset({ScalingTrigger.POLICY, ScalingTrigger.MANUAL})
#: The longest `by` a decision records (its contract's `Label`).
BY_LIMIT = 256


class StaleEvaluation(ConflictError):
    """The autoscaler evaluated an older version of the pool: an operator (or another evaluation) changed it
    since. Never retried here: the autoscaler decides again from what it reads now."""


class LaunchRecord(BaseModel):
    """The last evaluation that launched workers. The same report sent again (its answer was lost, or the
    control plane failed before the launches were carried out) while the pool is as that evaluation left it is
    a replay: carried out again with the same launch numbers, whose workers already exist or are created now."""

    model_config = ConfigDict(extra="forbid")

    evaluated_version: int
    digest: str
    """A digest of the report as it was sent."""
    first: int
    count: int
    recorded_version: int
    """The pool's version once the evaluation was stored."""


def report_digest(report: PoolEvaluation) -> str:
    return hashlib.sha256(report.model_dump_json().encode()).hexdigest()


def launch_key(pool_id: str, seq: int) -> str:
    """The idempotency key of a pool's launch number `seq`: it names the worker that launch creates."""
    return f"pool:{pool_id}:{seq}"


def new_pool_id() -> str:
    return uuid.uuid4().hex


def _action(old: int, new: int) -> ScalingAction:
    if new > old:
        return ScalingAction.SCALE_UP
    return ScalingAction.SCALE_DOWN if new < old else ScalingAction.NONE


class WorkerPool(PoolView):
    """The aggregate root: `PoolView`'s fields, the scaling decisions (`history`, newest last, at most
    `HISTORY_LIMIT`), the changes of its phase and flags (`state_history`) and the fencing tokens."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)

    id: str = Field(default_factory=new_pool_id)
    created_at: datetime
    updated_at: datetime
    history: list[ScalingDecision] = Field(default_factory=list)
    state_history: list[StateChange] = Field(default_factory=list)
    last_launch: LaunchRecord | None = None
    fence: FenceTokens = Field(default_factory=dict)

    # ------------------------------------------------------------------ helpers

    def view(self) -> PoolView:
        """The pool as everyone reads it (no histories, no tokens)."""
        return PoolView.model_validate(self.model_dump(exclude={"history", "state_history", "last_launch"}))

    def spec(self) -> PoolSpec:
        return PoolSpec.model_validate(self.model_dump(include=set(SPEC_FIELDS)))

    @property
    def terminated(self) -> bool:
        return self.phase is PoolPhase.TERMINATED

    def _event(self, type_: str, **data: Any) -> DomainEvent:
        return DomainEvent(type=type_, subject_id=self.id, data={"pool_id": self.id, "name": self.name, **data})

    def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None,
                by: str | None) -> None:
        self.state_history.append(StateChange(field=field, from_=old, to=new, at=at, reason=reason, by=by))
        del self.state_history[:-STATE_HISTORY_LIMIT]

    def _figures(self) -> dict[str, Figure]:
        """What an operator's decision was taken on, as the history keeps it: the size, the bounds and the last
        capacity the autoscaler reported."""
        cap = self.capacity
        return {"desired": self.desired_workers, "workers": cap.workers, "ready": cap.ready,
                "sessions": cap.sessions, "waiting": cap.waiting_sessions, "avg_cpu_percent": cap.avg_cpu_percent,
                "avg_memory_percent": cap.avg_memory_percent, "min_workers": self.scaling.min_workers,
                "max_workers": self.scaling.max_workers}

    def check_open(self, action: str) -> None:
        """409 when the pool is terminated or being deleted: it takes no operator change any more."""
        if self.terminated:
            raise ConflictError(f"pool {self.name!r} is terminated; it cannot be {action}", pool_id=self.id)
        if self.deleting:
            raise ConflictError(f"pool {self.name!r} is being deleted; it cannot be {action}", pool_id=self.id)

    def _decide(self, decision: ScalingDecision) -> list[DomainEvent]:
        """Keep a decision (bounded history, newest last); a scale decided by the policy or an operator starts
        the cooldown of its direction."""
        self.history.append(decision)
        del self.history[:-HISTORY_LIMIT]
        self.last_decision = decision
        if decision.trigger in COOLDOWN_TRIGGERS:
            if decision.action is ScalingAction.SCALE_UP:
                self.last_scale_up_at = decision.at
            elif decision.action is ScalingAction.SCALE_DOWN:
                self.last_scale_down_at = decision.at
        kind = ev.POOL_DECISION_RECORDED if decision.action is ScalingAction.NONE else ev.POOL_SCALED
        return [self._event(kind, decision=decision.model_dump(mode="json"))]

    def _set_phase(self, phase: PoolPhase, now: datetime, reason: str | None, by: str) -> list[DomainEvent]:
        old = self.phase
        if phase is old:
            return []
        self.phase = phase
        if phase is PoolPhase.READY and self.ready_since is None:
            self.ready_since = now
        self._record("phase", old.value, phase.value, now, reason, by)
        found = [self._event(ev.POOL_PHASE_CHANGED, old_phase=old.value, new_phase=phase.value, reason=reason)]
        if phase is PoolPhase.TERMINATED:
            found.append(self._event(ev.POOL_TERMINATED, by=by))
        return found

    def _set_flag(self, field: str, value: bool, now: datetime, by: str) -> None:
        setattr(self, field, value)
        self._record(field, str(not value).lower(), str(value).lower(), now, None, by)

    # ------------------------------------------------------------------ an operator's changes

    @classmethod
    def created(cls, spec: PoolSpec, now: datetime, by: str) -> tuple[WorkerPool, list[DomainEvent]]:
        """A new pool, held at its minimum until an operator or the policy sizes it."""
        pool = cls(**spec.model_dump(), phase=PoolPhase.PENDING, desired_workers=spec.scaling.min_workers,
                   created_at=now, updated_at=now)
        pool._record("phase", None, PoolPhase.PENDING.value, now, "created", by)
        return pool, [pool._event(ev.POOL_CREATED, lab_track=pool.lab_track, template_name=pool.template_name,
                                  by=by)]

    def update(self, spec: PoolSpec, now: datetime, by: str) -> list[DomainEvent]:
        """Replace the spec; the size is clamped into the new bounds (recorded as a `bounds` decision)."""
        self.check_open("changed")
        current = self.spec()
        changed = [name for name in SPEC_FIELDS if getattr(current, name) != getattr(spec, name)]
        if not changed:
            return []
        for name in changed:
            setattr(self, name, getattr(spec, name))
        self.spec_version += 1
        found = [self._event(ev.POOL_UPDATED, changed=changed, by=by)]
        low, high = self.scaling.min_workers, self.scaling.max_workers
        clamped = min(max(self.desired_workers, low), high)
        if clamped != self.desired_workers:
            found += self._decide(ScalingDecision(
                at=now, action=_action(self.desired_workers, clamped), trigger=ScalingTrigger.BOUNDS,
                policy=self.scaling.policy, from_workers=self.desired_workers, to_workers=clamped,
                reason=f"the scaling bounds changed to {low}..{high} workers", inputs=self._figures(),
                by=by[:BY_LIMIT]))
            self.desired_workers = clamped
        return found

    def scale(self, workers: int, now: datetime, by: str, reason: str | None = None) -> list[DomainEvent]:
        """Hold the pool at `workers` (an operator's decision, which starts the cooldown of its direction)."""
        self.check_open("scaled")
        if self.draining:
            raise ConflictError(f"pool {self.name!r} is draining; undrain it before scaling it", pool_id=self.id)
        low, high = self.scaling.min_workers, self.scaling.max_workers
        if not low <= workers <= high:
            raise InvalidError(f"pool {self.name!r} holds between {low} and {high} workers (min_workers and "
                               f"max_workers): {workers} is outside them; change its scaling bounds first")
        decision = ScalingDecision(at=now, action=_action(self.desired_workers, workers),
                                   trigger=ScalingTrigger.MANUAL, policy=self.scaling.policy,
                                   from_workers=self.desired_workers, to_workers=workers,
                                   reason=reason or f"scaled to {workers} workers by {by}", inputs=self._figures(),
                                   by=by[:BY_LIMIT])
        self.desired_workers = workers
        return self._decide(decision)

    def drain(self, now: datetime, by: str) -> list[DomainEvent]:
        """No new session on its workers, no scaling; they stop once empty (the autoscaler drains them)."""
        self.check_open("drained")
        if self.draining:
            return []
        self._set_flag("draining", True, now, by)
        return [self._event(ev.POOL_DRAINING, by=by)]

    def undrain(self, now: datetime, by: str) -> list[DomainEvent]:
        self.check_open("undrained")
        if not self.draining:
            return []
        self._set_flag("draining", False, now, by)
        return [self._event(ev.POOL_DRAIN_CANCELLED, by=by)]

    def delete(self, now: datetime, by: str, *, has_members: bool) -> list[DomainEvent]:
        """Mark it for deletion: the autoscaler drains and terminates its workers, then reports it terminated.

        A pool that has no member and never launched a worker is terminated at once. One that launched is
        left to the autoscaler even when no member shows: a launch it reported may still be being carried
        out, and its worker would outlive the pool."""
        if self.terminated or self.deleting:
            return []
        self._set_flag("deleting", True, now, by)
        found = [self._event(ev.POOL_DELETING, by=by)]
        if not has_members and self.launches == 0:
            found += self._set_phase(PoolPhase.TERMINATED, now, "deleted with no worker", by)
        return found

    def adopt(self, worker_id: str, now: datetime, by: str) -> list[DomainEvent]:
        """An existing worker joins the pool (the worker records it too)."""
        self.check_open("given workers")
        self._record("member", None, worker_id, now, "adopted", by)
        return [self._event(ev.POOL_WORKER_ADOPTED, worker_id=worker_id, by=by)]

    def release(self, worker_id: str, now: datetime, by: str) -> list[DomainEvent]:
        """A worker leaves the pool (allowed in any phase: an operator may keep a worker of a deleted pool)."""
        self._record("member", worker_id, "", now, "released", by)
        return [self._event(ev.POOL_WORKER_RELEASED, worker_id=worker_id, by=by)]

    # ------------------------------------------------------------------ the autoscaler's report

    def apply_evaluation(self, report: PoolEvaluation, now: datetime,
                         by: str) -> tuple[list[DomainEvent], list[int]]:
        """Record an evaluation of this very version of the pool: its phase, capacity, size and decision.
        Returns the events and the sequence numbers of the launches it asks for, those of `launch` then those of
        `warm_up` (each names a worker and is its idempotency key, so that a replay launches nothing twice). The
        launching evaluation recorded last,
        sent again while the pool is as it left it, is a replay: no event, its launch numbers again."""
        if report.expected_version != self.version:
            replay = self.last_launch
            if (replay is not None and replay.recorded_version == self.version
                    and replay.evaluated_version == report.expected_version and replay.digest == report_digest(report)):
                return [], list(range(replay.first, replay.first + replay.count))
            raise StaleEvaluation(f"pool {self.name!r} changed since the autoscaler read it (version "
                                  f"{report.expected_version}, now {self.version}); evaluate it again",
                                  pool_id=self.id)
        if self.terminated:
            raise ConflictError(f"pool {self.name!r} is terminated; there is nothing to evaluate", pool_id=self.id)
        both = sorted(set(report.resume) & set(report.terminate))
        if both:
            raise InvalidError(f"an evaluation cannot both resume and terminate worker(s) {', '.join(both[:10])}",
                               pool_id=self.id)
        elsewhere = sorted(set(report.launch + report.warm_up) - set(self.regions))
        if elsewhere:
            raise InvalidError(f"{', '.join(elsewhere)} is not a region of pool {self.name!r} "
                               f"({', '.join(self.regions)}): no worker is launched there", pool_id=self.id)
        if (report.launch or report.resume or report.warm_up) and (self.draining or self.deleting):
            state = "being deleted" if self.deleting else "draining"
            raise ConflictError(f"pool {self.name!r} is {state}: it launches and resumes no worker",
                                pool_id=self.id)
        found = self._set_phase(report.phase, now, report.error or (report.decision.reason if report.decision
                                                                     else None), by)
        if report.capacity != self.capacity:
            self.capacity = report.capacity.model_copy(deep=True)
            found.append(self._event(ev.POOL_CAPACITY_UPDATED, capacity=self.capacity.model_dump(mode="json")))
        self.capacity_observed_at = report.observed_at
        self.desired_workers = report.desired_workers
        self.error = report.error
        first, count = self.launches, len(report.launch) + len(report.warm_up)
        if report.decision is not None:
            decision = report.decision.model_copy(deep=True)
            # The autoscaler cannot name the workers it launches; their ids follow from the launch numbers.
            decision.launched = [worker_id_for(launch_key(self.id, seq)) for seq in range(first, first + count)]
            found += self._decide(decision)
        if count:
            self.launches += count
            self.last_launch = LaunchRecord(evaluated_version=report.expected_version, digest=report_digest(report),
                                            first=first, count=count, recorded_version=self.version + 1)
        return found, list(range(first, self.launches))


def evaluation_fingerprint(pool: WorkerPool) -> Any:
    """What decides whether an evaluation changed the pool: everything but the write path's own fields and the
    time of the observation, so that an evaluation finding everything as it was is not written (the
    autoscaler reports every pool every cycle; a write would bump the version an operator edits against)."""
    return pool.model_dump(exclude={"updated_at", "version", "capacity_observed_at"})


__all__ = ["LaunchRecord", "StaleEvaluation", "WorkerPool", "evaluation_fingerprint", "launch_key", "new_pool_id"]
