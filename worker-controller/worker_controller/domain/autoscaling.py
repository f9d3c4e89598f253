"""The autoscaler's decision for one pool: a pure function of what the control plane answered (`PoolWork`),
returning what to do and why (docs/worker-controller.md, "The autoscaler"). No I/O, no clock: the moment is the one the
pool was read at, so cooldowns and allowed hours are judged on the control plane's clock.

`plan_pool` works in two steps:

1. **Size.** The policy proposes a size from the pool's capacity and from the sessions booked ahead
   (`scaling_policies.policy_size`, `scale_ahead`), within the allowed hours and the cooldowns; the bounds
   (min, max) always apply. A deleted pool's size is 0; a drained pool keeps its size but retires its workers.
2. **Converge.** The members counted toward the size (`MemberRole.ACTIVE`) are brought to it: stopped members
   are resumed before new ones are launched (one region at a time, the least used first), except the `cold`
   ones the bookings need launched now; the surplus is retired, least useful first, never a worker that holds
   a session or has one booked. Retired workers are stopped into the warm pool up to its size
   (`warm_pool_size`) and terminated beyond it; stopped workers beyond it are terminated.

A member without an instance whose launch failed `PoolWork.launch_failure_limit` times in a row (the worker
carries its `launch_failure`) fails the pool: its `error` names the worker(s), their attempts and the last error,
and no other worker is launched until that one is (the reconciler keeps retrying it). Once it is launched, the
next evaluation finds the pool in its usual phase.

Every evaluation says why, including "did nothing because ...". `inputs["rule"]` names the rule that decided, so
that a decision with the same outcome and rule as the last one is not recorded again (`PoolPlan.evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

from lcm_core.domain.enums import DesiredStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.pool_capacity import MemberRole, PoolCapacity, member_role, on_its_way, pool_capacity
from lcm_core.domain.pool_capacity import retirement_order as usefulness  # shared with the scheduler
from lcm_core.domain.pools import (
    Figure,
    PoolEvaluation,
    PoolPhase,
    PoolView,
    PoolWork,
    ScaleDownAction,
    ScalingAction,
    ScalingDecision,
    ScalingPolicy,
    ScalingTrigger,
)
from lcm_core.domain.workers import WorkerSummary
from worker_controller.domain.scale_ahead import AheadNeed, ahead_need
from worker_controller.domain.scaling_policies import bounded, policy_size

BY = "worker-controller"


@dataclass
class PoolPlan:
    """What the autoscaler does about one pool now."""

    phase: PoolPhase
    capacity: PoolCapacity
    desired_workers: int
    decision: ScalingDecision
    launch: list[str] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)
    retire_then: ScaleDownAction = ScaleDownAction.STOP
    terminate: list[str] = field(default_factory=list)
    """Retired beyond the warm pool, or stopped workers it no longer keeps: drained, then terminated."""
    warm_up: list[str] = field(default_factory=list)
    """A region per worker to launch into the warm pool."""
    error: str | None = None

    @property
    def acts(self) -> bool:
        return bool(self.launch or self.resume or self.retire or self.terminate or self.warm_up)

    def evaluation(self, pool: PoolView) -> PoolEvaluation | None:
        """The report for the control plane, or None when it would change nothing there. The decision is
        recorded when it acts, changes the size, or says something new (its rule or action differs from the
        last recorded one): a pool that keeps "doing nothing for the same reason" does not fill its history."""
        last = pool.last_decision
        new_rule = last is None or last.inputs.get("rule") != self.decision.inputs.get("rule") or \
            last.action is not self.decision.action
        record = self.acts or self.desired_workers != pool.desired_workers or new_rule
        if not record and self.phase is pool.phase and self.capacity == pool.capacity and \
                self.error == pool.error:
            return None
        return PoolEvaluation(
            expected_version=pool.version, observed_at=self.decision.at, phase=self.phase, capacity=self.capacity,
            desired_workers=self.desired_workers, decision=self.decision if record else None, launch=self.launch,
            resume=self.resume, retire=self.retire, retire_then=self.retire_then, terminate=self.terminate,
            warm_up=self.warm_up, error=self.error)


# --------------------------------------------------------------------------- 2. converge


def launch_regions(count: int, regions: list[str], members: list[WorkerSummary]) -> list[str]:
    """A region per worker to launch: each time the region with the fewest counted members (ties: the pool's
    order), so that a pool over several regions stays balanced."""
    load = {region: 0 for region in regions}
    for row in members:
        if row.aws_region in load:
            load[row.aws_region] += 1
    chosen = []
    for _ in range(count):
        region = min(regions, key=lambda r: (load[r], regions.index(r)))
        load[region] += 1
        chosen.append(region)
    return chosen


def _template_problem(work: PoolWork) -> str | None:
    pool = work.pool
    if not work.template_found:
        return f"template {pool.template_name!r} does not exist: no worker can be launched"
    if not work.template_enabled:
        return f"template {pool.template_name!r} is disabled: no worker can be launched"
    if work.template_regions:
        missing = [r for r in pool.regions if r not in work.template_regions]
        if len(missing) == len(pool.regions):
            return (f"template {pool.template_name!r} has no placement in the pool's regions "
                    f"({', '.join(pool.regions)})")
    return None


#: Members named in a launch failure's error (the rest are counted).
FAILING_NAMED = 3


def _failing_launches(work: PoolWork, roles: dict[str, MemberRole]) -> list[WorkerSummary]:
    """Members still wanted that have no instance and whose launch failed `launch_failure_limit` times in a
    row (or more): the pool does not pile more launches on them."""
    return [row for row in work.workers
            if roles[row.id] in (MemberRole.ACTIVE, MemberRole.WARMING) and row.aws_instance_id is None
            and row.launch_failure is not None and row.launch_failure.attempts >= work.launch_failure_limit]


def _launch_problem(failing: list[WorkerSummary]) -> str | None:
    """Which members cannot be launched, how many times each failed, and the last error."""
    if not failing:
        return None
    failures = [(row, row.launch_failure) for row in failing if row.launch_failure is not None]
    named = ", ".join(f"{row.name or row.id} ({failure.attempts} attempts since "
                      f"{failure.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"
                      for row, failure in failures[:FAILING_NAMED])
    more = f" and {len(failures) - FAILING_NAMED} more" if len(failures) > FAILING_NAMED else ""
    last = max(failures, key=lambda pair: pair[1].last_at)[1]
    return (f"{len(failures)} worker(s) could not be launched: {named}{more}; last error: {last.error}")[:1000]


#: The thresholds each policy compares the pool's figures with (recorded with its decisions).
POLICY_THRESHOLDS = {
    ScalingPolicy.LAB_COUNT_BASED: ("max_labs_per_worker", "min_labs_per_worker"),
    ScalingPolicy.CAPACITY_BASED: ("cpu_scale_up_percent", "cpu_scale_down_percent", "memory_scale_up_percent",
                                   "memory_scale_down_percent"),
    ScalingPolicy.HYBRID: ("max_labs_per_worker", "min_labs_per_worker", "cpu_scale_up_percent",
                           "cpu_scale_down_percent", "memory_scale_up_percent", "memory_scale_down_percent"),
}


def _inputs(pool: PoolView, cap: PoolCapacity, held: int, rule: str) -> dict[str, Figure]:
    cfg = pool.scaling
    figures: dict[str, Figure] = {
        "rule": rule, "policy": cfg.policy.value, "desired": pool.desired_workers, "workers": cap.workers,
        "ready": cap.ready, "parked": cap.parked, "leaving": cap.leaving, "sessions": held,
        "waiting": cap.waiting_sessions, "avg_cpu_percent": cap.avg_cpu_percent,
        "avg_memory_percent": cap.avg_memory_percent, "min_workers": cfg.min_workers,
        "max_workers": cfg.max_workers}
    figures.update((name, getattr(cfg, name)) for name in POLICY_THRESHOLDS.get(cfg.policy, ()))
    return figures


#: Demand steps a recorded decision keeps (the first ones of the look-ahead: a pool keeps 50 decisions).
DECISION_STEPS = 24


def _explain(decision: ScalingDecision, work: PoolWork, need: AheadNeed | None, size: int) -> None:
    """Record the forecast, lead times and cost the decision was taken on."""
    price = work.template_cost_per_hour_usd
    decision.inputs["cost_per_hour_usd"] = None if price is None else round(price * size, 4)
    if need is None:
        return
    decision.demand = need.steps[:DECISION_STEPS]
    decision.lead_time = need.lead
    decision.inputs.update({
        "look_ahead_minutes": work.pool.scaling.look_ahead_minutes, "booked": len(work.bookings),
        "forecast_now_workers": need.now, "forecast_resume_workers": need.by_resume,
        "forecast_workers": need.by_provision, "forecast_peak_workers": need.peak,
        "lead_provision_minutes": round(need.lead.provision_seconds / 60, 1),
        "lead_resume_minutes": round(need.lead.resume_seconds / 60, 1),
        "lead_measured": need.lead.provision_measured})


def _warm_pool(plan: PoolPlan, work: PoolWork, roles: dict[str, MemberRole], parked: list[WorkerSummary],
               problem: str | None, need: AheadNeed | None) -> list[str]:
    """Keep the warm pool at its size (`warm_pool_size` K), counting the stopped workers that stay, those on
    their way to stopped and those warming up:
    - workers retired now are stopped while it has room, and terminated beyond it;
    - stopped workers beyond it are terminated (unless this plan resumes them, or bookings within the
      look-ahead need more workers than are counted: they will be resumed for them);
    - warming workers whose CML is available are retired to stopped (they took no licence); one that will not
      get there by itself (CML failed) is terminated;
    - while it has fewer than K, and the pool is at its minimum, workers are launched into it (they boot once,
      then stop). Above the minimum, the workers counted now return to the warm pool when they are retired:
      launching more would only have them terminated then.
    Returns notes for the decision."""
    cfg = work.pool.scaling
    keep = cfg.warm_pool_size
    if keep is None:
        # No warm pool (any more): a worker still warming up for one is not wanted.
        left = [row.id for row in work.workers if roles[row.id] is MemberRole.WARMING]
        plan.terminate += left
        return [f"no warm pool: terminating {len(left)} worker(s) warming up for one"] if left else []
    stopping = sum(1 for row in work.workers if roles[row.id] is MemberRole.LEAVING
                   and DesiredStatus.STOPPED in (row.drain_then, row.desired_status))
    warming = [row for row in work.workers if roles[row.id] is MemberRole.WARMING]
    failed = [row.id for row in warming if not on_its_way(row) and row.service_status is not ServiceStatus.AVAILABLE]
    warming = [row for row in warming if row.id not in failed]
    stay = [row for row in parked if row.id not in plan.resume]
    room = keep - len(stay) - stopping - len(warming)
    counted = sum(1 for row in work.workers if roles[row.id] is MemberRole.ACTIVE)
    booked_beyond = need is not None and need.peak > counted
    notes = []
    plan.retire_then = ScaleDownAction.STOP
    if plan.retire:
        kept = plan.retire[:max(0, room)]
        plan.terminate = plan.retire[len(kept):]
        plan.retire = kept
        room -= len(kept)
        notes.append(f"warm pool of {keep}: {len(kept)} stopped, {len(plan.terminate)} terminated")
    elif room < 0 and not plan.resume and not plan.launch and not booked_beyond:
        extra = [row.id for row in sorted(stay, key=lambda r: (r.name, r.id), reverse=True)[:-room]]
        plan.terminate = extra
        notes.append(f"{len(stay) + stopping + len(warming)} stopped or warming, beyond the warm pool of {keep}: "
                     f"terminating {len(extra)}")
    if failed:
        plan.terminate += failed
        notes.append(f"{len(failed)} warming up will not get there (CML failed): terminating")
    ready = [row.id for row in warming if row.status is WorkerStatus.RUNNING
             and row.service_status is ServiceStatus.AVAILABLE]
    if ready:
        plan.retire += ready
        notes.append(f"{len(ready)} warmed up (CML available): stopping into the warm pool")
    if room > 0 and not problem and plan.desired_workers <= cfg.min_workers:
        regions = [r for r in work.pool.regions if not work.template_regions or r in work.template_regions]
        plan.warm_up = launch_regions(room, regions, [*warming, *stay])
        notes.append(f"warm pool of {keep} has {keep - room}: launching {room} to boot once and stop")
    return notes


def plan_pool(work: PoolWork) -> PoolPlan:
    """What to do about the pool now, and why (see the module docstring)."""
    pool, now = work.pool, work.observed_at
    cfg = pool.scaling
    roles = {row.id: member_role(row) for row in work.workers}
    active = [row for row in work.workers if roles[row.id] is MemberRole.ACTIVE]
    parked = sorted((row for row in work.workers if roles[row.id] is MemberRole.PARKED
                     and row.status is WorkerStatus.STOPPED), key=lambda r: (r.name, r.id))
    cap = pool_capacity(work.workers, work.waiting)
    held = sum(row.sessions for row in active)

    if pool.deleting:
        return _wind_down(work, cap, held, roles, deleting=True)
    if pool.draining:
        return _wind_down(work, cap, held, roles, deleting=False)

    need = ahead_need(work)
    proposal = bounded(policy_size(work, cap, held, need), cfg, pool.desired_workers)
    size = proposal.size
    failing = _launch_problem(_failing_launches(work, roles))
    plan = PoolPlan(phase=PoolPhase.READY, capacity=cap, desired_workers=size,
                    decision=ScalingDecision(at=now, action=ScalingAction.NONE, trigger=proposal.trigger,
                                             policy=cfg.policy, from_workers=pool.desired_workers, to_workers=size,
                                             reason=proposal.reason,
                                             inputs=_inputs(pool, cap, held, proposal.rule), by=BY),
                    retire_then=cfg.scale_down_action)
    notes = [proposal.reason]
    if work.waiting.too_large:
        room = work.template_capacity
        notes.append(f"{work.waiting.too_large} session(s) waiting for the pool need more than an empty worker of "
                     f"template {pool.template_name} has ({room.cpu_cores:g} cores, {room.memory_gb:g} GB): no "
                     "worker is launched for them")
    current = len(active)
    if size > current:
        missing = size - current
        plan.resume = [row.id for row in parked[:max(0, missing - proposal.cold)]]
        to_launch = missing - len(plan.resume)
        problem = (_template_problem(work) or failing) if to_launch else None
        if problem is not None and problem is failing:
            notes.append(f"cannot launch {to_launch} more worker(s) until the failing launch gets through")
        elif problem:
            plan.error = problem
            notes.append(f"cannot launch {to_launch} worker(s): {problem}")
        else:
            regions = [r for r in pool.regions if not work.template_regions or r in work.template_regions]
            plan.launch = launch_regions(to_launch, regions, active)
        if plan.resume:
            notes.append(f"resuming {len(plan.resume)} stopped worker(s)")
        if plan.launch:
            notes.append(f"launching {len(plan.launch)} from template {pool.template_name} "
                         f"({', '.join(sorted(set(plan.launch)))})")
    elif size < current:
        booked = {b.worker_id for b in work.bookings if b.worker_id}
        empty = sorted((row for row in active if row.sessions == 0 and row.id not in booked), key=usefulness)
        plan.retire = [row.id for row in empty[:current - size]]
        kept = current - size - len(plan.retire)
        if plan.retire:
            then = cfg.scale_down_action.value if cfg.warm_pool_size is None else "stopped or terminated"
            notes.append(f"retiring {len(plan.retire)} worker(s) that hold no session (drained, licence released, "
                         f"then {then})")
        if kept:
            notes.append(f"{kept} more to retire hold or have booked sessions: they stay until those end")
    plan.error = plan.error or failing
    plan.phase = _phase(pool, cap, plan, size, current, failing is not None)  # keeping the warm pool is no scaling
    sized = plan.acts
    warm_notes = _warm_pool(plan, work, roles, parked, _template_problem(work) or failing, need)
    decision = plan.decision
    decision.launched, decision.resumed = [], plan.resume
    decision.retired = [*plan.retire, *plan.terminate]
    _explain(decision, work, need, size)
    if size > pool.desired_workers or plan.launch or plan.resume:
        decision.action = ScalingAction.SCALE_UP
    elif size < pool.desired_workers or plan.terminate or (sized and plan.retire):
        decision.action = ScalingAction.SCALE_DOWN
    if size == pool.desired_workers and sized and decision.trigger is ScalingTrigger.POLICY:
        # The size stands (an operator's scale, a worker that failed or left): say that first; what the
        # policy thinks of the size comes after.
        decision.trigger = ScalingTrigger.CONVERGE
        decision.inputs["rule"] = "converge"
        notes = [f"the pool is held at {size} worker(s) and counts {current}", *notes[1:],
                 f"policy: {proposal.reason}"]
    elif not sized and plan.acts and decision.trigger is ScalingTrigger.POLICY:
        decision.trigger = ScalingTrigger.CONVERGE
        decision.inputs["rule"] = "warm_pool"
        notes = [*warm_notes, f"policy: {proposal.reason}"]
        warm_notes = []
    if failing is not None:
        # Said first, and recorded once (its own rule): a pool whose launches keep failing is failed until one
        # gets through; more attempts change its error, not its history.
        decision.inputs.update(rule="launch_failing", launch_failure_limit=work.launch_failure_limit)
        notes = [f"launching no more workers: {failing}", *notes]
    decision.reason = "; ".join([*notes, *warm_notes])[:1000]
    return plan


def _phase(pool: PoolView, cap: PoolCapacity, plan: PoolPlan, size: int, current: int,
           launch_failing: bool) -> PoolPhase:
    if launch_failing or (plan.error and size > current):
        return PoolPhase.FAILED
    on_the_way = cap.on_the_way > 0 or bool(plan.launch or plan.resume)
    if pool.ready_since is None and size > 0 and (on_the_way or cap.ready < size):
        return PoolPhase.INITIALIZING
    if on_the_way or size > current:
        return PoolPhase.SCALING_UP
    if cap.leaving or plan.retire:
        return PoolPhase.SCALING_DOWN
    return PoolPhase.READY


def _wind_down(work: PoolWork, cap: PoolCapacity, held: int, roles: dict[str, MemberRole], *,
               deleting: bool) -> PoolPlan:
    """A drained pool retires its counted workers (drained, then stopped); a deleted one retires every worker
    not yet on its way to termination (drained, then terminated), and is terminated once none is left."""
    pool, now = work.pool, work.observed_at
    if deleting:
        left = [row for row in work.workers if roles[row.id] is not MemberRole.GONE]
        # A worker already leaving (a drain to stop under way) is retired once stopped; a failed one holding
        # sessions once they end: asking again meanwhile would be refused, and recorded every evaluation.
        retire = [row.id for row in left if row.drain_then is not DesiredStatus.TERMINATED and (
            roles[row.id] in (MemberRole.ACTIVE, MemberRole.PARKED, MemberRole.WARMING)
            or (roles[row.id] is MemberRole.FAILED and row.sessions == 0))]
        phase = PoolPhase.TERMINATED if not left else PoolPhase.TERMINATING
        then, trigger, size, rule = ScaleDownAction.TERMINATE, ScalingTrigger.DELETE, 0, "deleted"
        reason = ("pool deleted: " + (f"retiring {len(retire)} worker(s) (drained, then terminated)" if retire
                                      else f"waiting for {len(left)} worker(s) to terminate" if left
                                      else "every worker is terminated"))
    else:
        retire = [row.id for row in work.workers if roles[row.id] in (MemberRole.ACTIVE, MemberRole.WARMING)]
        phase, then, trigger, size, rule = (PoolPhase.DRAINING, ScaleDownAction.STOP, ScalingTrigger.DRAIN,
                                            pool.desired_workers, "drained")
        waiting_for = sum(1 for row in work.workers if roles[row.id] is MemberRole.LEAVING)
        reason = ("pool drained: " + (f"retiring {len(retire)} worker(s) (drained, then stopped)" if retire
                                      else f"waiting for {waiting_for} worker(s) to stop" if waiting_for
                                      else "every worker is stopped"))
    decision = ScalingDecision(at=now, action=ScalingAction.SCALE_DOWN if retire else ScalingAction.NONE,
                               trigger=trigger, policy=pool.scaling.policy, from_workers=pool.desired_workers,
                               to_workers=size, reason=reason, inputs=_inputs(pool, cap, held, rule),
                               retired=retire, by=BY)
    if phase is PoolPhase.TERMINATED:
        decision.inputs["rule"] = "terminated"
    elif not retire:
        decision.inputs["rule"] = f"{rule}_waiting"
    return PoolPlan(phase=phase, capacity=cap, desired_workers=size, decision=decision, retire=retire,
                    retire_then=then)
