"""Autoscaling benchmark: a 14-day term of bookings on a virtual clock, served by each scaling policy in turn.

    make bench                                   # runs this after the placement benchmark
    .venv/bin/python bench/autoscaling.py --days 14 --seed 2027 --png docs/img/autoscaling.png

In-process, no I/O, seeded (`--seed`): the same bookings and the same draws of every launch, resume and stop
for every policy. The decisions are the controllers' own code, not a copy: the worker-controller's
`PoolAutoscaler` (`plan_pool`) sizes each pool and the lablet-controller's `SchedulingPass` (its `Scheduler`,
with the track pools) places the sessions; `autoscaling_sim` plays the control plane (recording evaluations with
its `WorkerPool.apply_evaluation`), EC2, CML and the licences, and `autoscaling_workload` makes the term:
daily classes of 10-40 sessions on weekdays (2-4 h timeslots, booked days ahead) and ad-hoc bookings of 1-3
sessions made 15 min to 2 h ahead, for two lab tracks with a pool each, on m5zn.metal workers.

Policies, on the same bookings in the same run:
- static: a fleet sized for the term's peak, always running (the baseline every ratio is printed against);
- reactive capacity / reactive lab count: the policies as they were before issue 15 (CAPACITY_BASED and
  LAB_COUNT_BASED, `look_ahead_minutes` 0, no warm pool, scale-down stops the workers);
- lcm: LAB_COUNT_BASED looking 120 min ahead at the bookings, a warm pool of 2 stopped workers, lead times
  learned from the measured launches and resumes (never below the configured default until 20 were measured),
  workers serving `ready_ahead_minutes` (15, the default) before each booked timeslot, so that its sessions
  are placed and their labs booted by its start.
Every autoscaled pool has `min_workers` 0 (so that the policies differ by their decisions only; a reactive
pool held at 1 costs a worker all term) and `max_workers` 20; the other settings are the defaults.

Per policy it prints the cost (running at the template's $/h with EC2's 60 s minimum per start, stopped at
EBS gp3 $0.08/GB-month), worker-hours running and stopped, sessions on time (ad-hoc ones included): READY at
their timeslot's start, that is placed on a serving worker and their lab imported and booted by then
(placed_at + lab boot <= timeslot start, the lab boot drawn per session from 3-8 min, see
`autoscaling_workload.Durations.lab_boot`), the p95 start delay (timeslot start to lab ready, 0 if on time),
"p05 ready" (the 5th percentile of how long before its timeslot a session's lab was ready), the cold launches,
warm-up launches and resumes, and ratios to the static fleet; then whether `plan_pool` ignores the bookings of
a reactive pool (sampled: the next 2 h of bookings given or not); then the sessions that were late, with where
and when they were placed and what their pool looked like at their last call (their timeslot's start minus
their lab boot); and writes a chart of demand against capacity over the term (`--png`). `--schedule-ahead`
changes LABLET_SCHEDULE_AHEAD (900 s): how long before its timeslot a session is placed, and so the warning a
reactive pool gets from the sessions that wait for it.

Takes about 50-60 s on 2 cores for 14 days (`--jobs 2`: the policies run in two processes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, also when imported by the tests

from autoscaling_sim import SCHEDULE_AHEAD, Simulation
from autoscaling_state import SessionState
from autoscaling_workload import (
    COST_PER_HOUR_USD,
    CPU_CORES,
    HOUR,
    LAB_TYPES,
    MEMORY_GB,
    STOPPED_COST_PER_HOUR_USD,
    BookedSession,
    LabType,
    term,
)

from lcm_core.domain.pool_forecast import p95, workers_needed
from lcm_core.domain.pools import ScaleDownAction, ScalingConfig, ScalingPolicy
from lcm_core.domain.workers import Resources

DEFAULT_PNG = Path(__file__).resolve().parent.parent / "docs" / "img" / "autoscaling.png"
POLICIES = ("static", "reactive capacity", "reactive lab count", "lcm")
MAX_WORKERS = 20
"""Every autoscaled pool's maximum: above any peak of the term."""


def scaling(policy: str, lab: LabType, peak_workers: int) -> ScalingConfig:
    """The pool's scaling section under `policy` (static: held at the peak, no autoscaler)."""
    per_worker = lab.max_labs_per_worker
    if policy == "static":
        return ScalingConfig(policy=ScalingPolicy.NONE, min_workers=peak_workers, max_workers=peak_workers,
                             max_labs_per_worker=per_worker)
    if policy.startswith("reactive"):
        kind = ScalingPolicy.CAPACITY_BASED if policy == "reactive capacity" else ScalingPolicy.LAB_COUNT_BASED
        return ScalingConfig(policy=kind, min_workers=0, max_workers=MAX_WORKERS, look_ahead_minutes=0,
                             warm_pool_size=None, scale_down_action=ScaleDownAction.STOP,
                             max_labs_per_worker=per_worker)
    return ScalingConfig(policy=ScalingPolicy.LAB_COUNT_BASED, min_workers=0, max_workers=MAX_WORKERS,
                         look_ahead_minutes=120, warm_pool_size=2, scale_down_action=ScaleDownAction.STOP,
                         max_labs_per_worker=per_worker)


def peak_workers(bookings: list[BookedSession], lab: LabType, ahead: float) -> int:
    """Workers the most sessions of `lab` held at once need: a session holds its worker from its placement
    (`ahead` before its timeslot, or when booked if later) to its timeslot's end."""
    edges = sorted([(max(b.booked_at, b.start - ahead), 1) for b in bookings if b.lab is lab]
                   + [(b.end, -1) for b in bookings if b.lab is lab])
    held = peak = 0
    for _, change in edges:
        held += change
        peak = max(peak, held)
    return workers_needed(peak, peak * lab.cpu_cores, peak * lab.memory_gb, labs_per_worker=lab.max_labs_per_worker,
                          per_worker=Resources(cpu_cores=CPU_CORES, memory_gb=MEMORY_GB))


@dataclass(frozen=True)
class SessionOutcome:
    """One booked session under one policy: when it was placed and when its lab was ready."""

    id: str
    kind: str
    track: str
    start: float
    """Its timeslot's start."""
    length: float
    placed_at: float | None
    """None: never placed (its timeslot ended first)."""
    lab_boot: float
    """Its lab's import and boot, from its placement."""

    @property
    def ready_at(self) -> float | None:
        return None if self.placed_at is None else self.placed_at + self.lab_boot

    @property
    def on_time(self) -> bool:
        """Its lab ready by its timeslot's start."""
        return self.ready_at is not None and self.ready_at <= self.start

    @property
    def delay(self) -> float:
        """From its timeslot's start to its lab ready (0 if on time; never placed: its whole timeslot)."""
        return self.length if self.ready_at is None else max(0.0, self.ready_at - self.start)

    @property
    def margin(self) -> float:
        """How long before its timeslot its lab was ready (negative: late; never placed: minus its timeslot)."""
        return -self.length if self.ready_at is None else self.start - self.ready_at


@dataclass
class Outcome:
    """What one policy did over the term."""

    policy: str
    sessions: list[SessionOutcome] = field(default_factory=list)
    running_hours: float = 0.0
    billed_hours: float = 0.0
    stopped_hours: float = 0.0
    launches: int = 0
    warm_ups: int = 0
    resumes: int = 0
    evaluations: int = 0
    late: list[tuple[str, str, float, float | None, str]] = field(default_factory=list)
    """(session, kind, notice, delay or None if never placed, what its pool looked like)."""
    samples: list[tuple[float, dict[str, int], dict[str, int]]] = field(default_factory=list)
    """(time, running workers per track, serving workers per track) every 5 virtual minutes."""
    plans_changed_by_bookings: tuple[int, int] | None = None
    seconds: float = 0.0

    @property
    def cost(self) -> float:
        return self.billed_hours * COST_PER_HOUR_USD + self.stopped_hours * STOPPED_COST_PER_HOUR_USD

    def delays(self) -> list[float]:
        """Start delay per session (seconds): from its timeslot's start to its lab ready."""
        return [session.delay for session in self.sessions]

    def margins(self) -> list[float]:
        """How long before its timeslot each session's lab was ready (seconds; negative: late)."""
        return [session.margin for session in self.sessions]

    def on_time(self, kind: str | None = None) -> tuple[int, int]:
        """(sessions whose lab was ready by their timeslot's start, sessions), of one kind or all."""
        chosen = [s for s in self.sessions if kind is None or s.kind == kind]
        return sum(1 for s in chosen if s.on_time), len(chosen)


def simulate(policy: str, days: int, seed: int, schedule_ahead: float = SCHEDULE_AHEAD) -> Outcome:
    """One policy over the term (runs in a process of its own when the policies run in parallel)."""
    started = time.perf_counter()
    bookings = term(days, seed)
    peaks = {lab.track: peak_workers(bookings, lab, schedule_ahead) for lab in LAB_TYPES}
    sim = Simulation(bookings, {lab.track: scaling(policy, lab, peaks[lab.track]) for lab in LAB_TYPES},
                     days=days, seed=seed, autoscaled=policy != "static",
                     static_workers=peaks if policy == "static" else None,
                     check_bookings_ignored=policy.startswith("reactive"), schedule_ahead=schedule_ahead)
    asyncio.run(sim.run())
    out = Outcome(policy, evaluations=sum(p.evaluations for p in sim.by_pool.values()),
                  plans_changed_by_bookings=sim.bookings_check)
    for state in sim.by_session.values():
        b = state.booked
        session = SessionOutcome(b.id, b.kind, b.lab.track, b.start, b.end - b.start, state.placed_at, state.lab_boot)
        out.sessions.append(session)
        if not session.on_time:
            out.late.append((b.id, b.kind, b.notice, None if session.placed_at is None else session.delay,
                             _late_because(state)))
    for worker in sim.by_worker.values():
        out.running_hours += worker.running_seconds / HOUR
        out.billed_hours += worker.billed_seconds / HOUR
        out.stopped_hours += worker.stopped_seconds / HOUR
    out.launches = sum(p.record.launches - p.warm_ups for p in sim.by_pool.values())
    out.warm_ups = sum(p.warm_ups for p in sim.by_pool.values())
    out.resumes = sum(p.resumes for p in sim.by_pool.values())
    out.samples = [(s.at, s.running, s.serving) for s in sim.samples]
    out.seconds = time.perf_counter() - started
    return out


def _late_because(state: SessionState) -> str:
    """When a late session was placed and on which worker (minutes from its timeslot's start), then what its
    pool looked like at its last call if it was still waiting then."""
    start = state.booked.start
    where = "never placed" if state.placed_at is None else (
        f"placed {(state.placed_at - start) / 60:+.1f} on {state.placed_on}, lab boot {state.lab_boot / 60:.1f}")
    return f"{where}; at its last call " + (state.late_because or "-")


def report(outcomes: list[Outcome], bookings: list[BookedSession]) -> None:
    base = outcomes[0]
    print(f"{'policy':<20} {'cost $':>9} {'x static':>8} {'run h':>7} {'stop h':>7} {'on time':>9} {'%':>7} "
          f"{'ad-hoc %':>8} {'p95 min':>7} {'p05 ready':>9} {'never':>5} {'launch':>6} {'warmup':>6} {'resume':>6} "
          f"{'evals':>6} {'sim s':>6}")
    for out in outcomes:
        on, total = out.on_time()
        ad_on, ad_total = out.on_time("ad-hoc")
        never = sum(1 for s in out.sessions if s.placed_at is None)
        print(f"{out.policy:<20} {out.cost:>9,.0f} {out.cost / base.cost:>8.2f} {out.running_hours:>7.0f} "
              f"{out.stopped_hours:>7.0f} {on:>4}/{total:<4} {100 * on / total:>7.2f} "
              f"{100 * ad_on / max(ad_total, 1):>8.1f} {p95(out.delays()) / 60:>7.1f} "
              f"{-p95([-m for m in out.margins()]) / 60:>9.1f} {never:>5} "
              f"{out.launches:>6} {out.warm_ups:>6} {out.resumes:>6} {out.evaluations:>6} {out.seconds:>6.1f}")
    for out in outcomes[1:]:
        on, total = out.on_time()
        base_on, _ = base.on_time()
        print(f"{out.policy}: cost {out.cost / base.cost:.2f}x the static fleet's, on time {on / max(base_on, 1):.3f}x")
    for out in outcomes:
        if out.plans_changed_by_bookings is not None:
            changed, checked = out.plans_changed_by_bookings
            print(f"{out.policy}: bookings of the next 2 h given to plan_pool changed {changed} of {checked} "
                  f"sampled plans (look_ahead_minutes 0: {'ignored' if changed == 0 else 'NOT ignored'})")
    lcm = next((o for o in outcomes if o.policy == "lcm"), None)
    if lcm is not None:
        on, total = lcm.on_time()
        reactive = [o for o in outcomes if o.policy.startswith("reactive")]
        checks = [(f"on time {100 * on / total:.2f}% >= 99.5%", on / total >= 0.995),
                  (f"cost {lcm.cost / base.cost:.0%} of the static fleet <= 50%", lcm.cost <= 0.5 * base.cost),
                  ("cheaper than every reactive policy", all(lcm.cost < r.cost for r in reactive)),
                  ("more sessions on time than every reactive policy", all(on > r.on_time()[0] for r in reactive))]
        for what, met in checks:
            print(f"lcm target: {what}: {'met' if met else 'NOT met'}")


def late_report(outcomes: list[Outcome], limit: int) -> None:
    for out in outcomes:
        if not out.late:
            continue
        causes = Counter(_rule(why) for *_, why in out.late)
        print(f"\n{out.policy}: {len(out.late)} late session(s); last decision before their last call: "
              + ", ".join(f"{rule} {n}" for rule, n in causes.most_common()))
        shown: set[str] = set()
        for session, kind, notice, delay, why in sorted(out.late, key=lambda late: late[0]):
            group = session.rsplit("-", 1)[0]  # one line per class or ad-hoc booking
            if group in shown or len(shown) >= limit:
                continue
            shown.add(group)
            late_by = "never placed" if delay is None else f"{delay / 60:.1f} min late"
            print(f"  {session} ({kind}, booked {notice / 60:.0f} min ahead): {late_by}; {why[:400]}")


def _rule(why: str) -> str:
    marker = "last decision "
    return why.split(marker, 1)[1].split(":", 1)[0] if marker in why else "?"


def chart(outcomes: list[Outcome], bookings: list[BookedSession], days: int, path: Path) -> None:
    """Demand (workers the sessions in their timeslot need) against running workers, per pool and policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = list(LAB_TYPES)
    fig, axes = plt.subplots(len(tracks), 2, figsize=(16, 3.8 * len(tracks)), squeeze=False,
                             gridspec_kw={"width_ratios": [2.2, 1]})
    times = [t for t, _, _ in outcomes[0].samples]
    zoom = min(days - 1, 7) if days > 1 else 0  # a Monday after a weekend, when the term is long enough
    for row, lab in enumerate(tracks):
        demand = []
        for t in times:
            here = sum(1 for b in bookings if b.lab is lab and b.start <= t < b.end)
            demand.append(workers_needed(here, here * lab.cpu_cores, here * lab.memory_gb,
                                         labs_per_worker=lab.max_labs_per_worker,
                                         per_worker=Resources(cpu_cores=CPU_CORES, memory_gb=MEMORY_GB)))
        days_axis = [t / 86400 for t in times]
        for ax, (low, high) in zip(axes[row], [(0, days), (zoom + 6 / 24, zoom + 20 / 24)], strict=True):
            ax.fill_between(days_axis, demand, step="post", color="0.85", label="demand (workers the sessions need)")
            for out in outcomes:
                ax.step(days_axis, [running[lab.track] for _, running, _ in out.samples], where="post",
                        linewidth=1, label=f"{out.policy}: running ({out.cost:,.0f} $ for the term)")
            ax.set_xlim(low, high)
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel(f"pool {lab.track}: workers")
        axes[row, 1].set_title(f"day {zoom}, 06:00-20:00", fontsize=9)
        axes[row, 0].legend(loc="upper right", fontsize=7, ncol=2)
    axes[-1, 0].set_xlabel("day of the term (virtual time; weekends at days 5-6 and 12-13)")
    axes[-1, 1].set_xlabel("day of the term")
    fig.suptitle("Booked demand against running workers per policy (bench/autoscaling.py; running includes "
                 "workers booting, warming up and stopping)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--png", default=str(DEFAULT_PNG), help="where to write the chart ('' for none)")
    parser.add_argument("--jobs", type=int, default=2, help="policies simulated at once (processes)")
    parser.add_argument("--late", type=int, default=12, help="late classes or bookings listed per policy")
    parser.add_argument("--schedule-ahead", type=float, default=SCHEDULE_AHEAD,
                        help="LABLET_SCHEDULE_AHEAD, seconds: sessions are placed (and wait for their pool) from "
                             "this long before their timeslot")
    args = parser.parse_args()
    bookings = term(args.days, args.seed)
    started = time.perf_counter()
    kinds = Counter(b.kind for b in bookings)
    peaks = {lab.track: peak_workers(bookings, lab, args.schedule_ahead) for lab in LAB_TYPES}
    print(f"autoscaling over a {args.days}-day term (seed {args.seed}, schedule-ahead {args.schedule_ahead:g} s): "
          f"{len(bookings)} sessions "
          f"({kinds['class']} in classes, {kinds['ad-hoc']} ad-hoc), pools "
          + ", ".join(f"{lab.track} ({lab.max_labs_per_worker}/worker, static {peaks[lab.track]})"
                      for lab in LAB_TYPES)
          + f"; m5zn.metal at {COST_PER_HOUR_USD} $/h, stopped {STOPPED_COST_PER_HOUR_USD:.4f} $/h", flush=True)
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            n = len(POLICIES)
            outcomes = list(pool.map(simulate, POLICIES, [args.days] * n, [args.seed] * n, [args.schedule_ahead] * n))
    else:
        outcomes = [simulate(policy, args.days, args.seed, args.schedule_ahead) for policy in POLICIES]
    report(outcomes, bookings)
    late_report(outcomes, args.late)
    if args.png:
        chart(outcomes, bookings, args.days, Path(args.png))
        print(f"\nchart: {args.png}")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
