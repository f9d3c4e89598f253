"""Placement benchmark: 10,000 sessions onto 2,000 synthetic workers with the lablet-controller's scheduler.

    make bench                                   # runs this after the fleet-cycle benchmark
    .venv/bin/python bench/placement.py --sessions 10000 --workers 2000

In-process, no I/O: the same `Scheduler` the controller's scheduling pass uses (one `refresh()` with the
fleet, then `decide()` + `reserve()` per session, as a pass does after each successful reservation). Per
strategy it prints decisions/second and the p50/p99/max latency of one decision (decide + reserve).

Baseline, in the same run: a naive scheduler (`NaiveScheduler`): for every decision,
run every filter over every worker, score every candidate and fully sort them, then take the first; it is
printed with its ratio to BEST_FIT. The fleet is seeded, so runs are comparable.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from lablet_controller.domain.placement import Requirements, WorkerCandidate, rejection, score
from lablet_controller.domain.scheduling import STRATEGIES, Scheduler

TRACKS = ("ccna", "ccnp", "devnet", "security")


def synthetic_fleet(count: int, rng: random.Random) -> list[WorkerCandidate]:
    """m5zn.metal-sized workers: ~90 % running and available, ~95 % licensed, a third dedicated to a track."""
    fleet = []
    for n in range(count):
        running = rng.random() < 0.9
        fleet.append(WorkerCandidate(
            id=f"w{n:05d}", status="running" if running else rng.choice(["stopped", "starting"]),
            service_status="available" if running else "unavailable",
            health_status="healthy" if running else "unknown",
            license_status="registered" if rng.random() < 0.95 else "evaluation",
            lab_track=rng.choice(TRACKS) if rng.random() < 0.33 else None,
            labs_count=rng.randint(0, 4), cpu_cores=48, memory_gb=192, storage_gb=500, max_nodes=200,
            used_cpu=rng.choice([0, 4, 8]), used_memory=rng.choice([0, 8, 16]), port_capacity=1000))
    return fleet


def synthetic_sessions(count: int, rng: random.Random) -> list[Requirements]:
    return [Requirements(cpu_cores=rng.choice([2, 4, 6, 8]), memory_gb=rng.choice([4, 8, 12, 16]),
                         storage_gb=rng.choice([10, 20, 40]), nodes=rng.randint(2, 8), ports=rng.randint(1, 4),
                         lab_track=rng.choice((*TRACKS, None))) for _ in range(count)]


class NaiveScheduler:
    """The naive baseline: filter all, score all, sort all, per decision."""

    def __init__(self, workers: list[WorkerCandidate]) -> None:
        self.workers = workers
        self.by_id = {w.id: w for w in workers}

    def decide(self, req: Requirements) -> str | None:
        candidates = [w for w in self.workers if rejection(w, req, require_license=True) is None]
        ranked = sorted(((score(w, req), w) for w in candidates), key=lambda pair: pair[0], reverse=True)
        return ranked[0][1].id if ranked else None

    def reserve(self, worker_id: str, req: Requirements) -> None:
        w = self.by_id[worker_id]
        w.take(req)


def placed_on(scheduler: Scheduler, requirements: Requirements) -> str | None:
    """The worker `scheduler` places a session of `requirements` on (None: none fits)."""
    return scheduler.decide(requirements).worker_id


def run(name: str, decide: Callable[[Requirements], str | None], reserve: Callable[[str, Requirements], None],
        sessions: list[Requirements]) -> dict[str, float]:
    latencies, placed = [], 0
    started = time.perf_counter()
    for req in sessions:
        t0 = time.perf_counter()
        worker_id = decide(req)
        if worker_id is not None:
            reserve(worker_id, req)
            placed += 1
        latencies.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    latencies.sort()
    result = {"placed": placed, "per_second": len(sessions) / elapsed, "p50": statistics.median(latencies),
              "p99": latencies[int(len(latencies) * 0.99) - 1], "max": latencies[-1], "elapsed": elapsed}
    print(f"{name:<22} {placed:>7} {result['per_second']:>12,.0f} {result['p50']:>9.3f} {result['p99']:>9.3f} "
          f"{result['max']:>9.3f} {elapsed:>9.2f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive sort-all baseline")
    args = parser.parse_args()
    fleet = synthetic_fleet(args.workers, random.Random(args.seed))
    sessions = synthetic_sessions(args.sessions, random.Random(args.seed + 1))
    print(f"placement of {args.sessions:,} sessions onto {args.workers:,} workers (latency per decision, ms)")
    print(f"{'strategy':<22} {'placed':>7} {'decisions/s':>12} {'p50':>9} {'p99':>9} {'max':>9} {'total s':>9}")
    results = {}
    for strategy in STRATEGIES:
        scheduler = Scheduler(strategy, rng=random.Random(args.seed))
        scheduler.refresh(replace(w) for w in fleet)
        results[strategy] = run(strategy, functools.partial(placed_on, scheduler), scheduler.reserve, sessions)
    if not args.no_baseline:
        naive = NaiveScheduler([replace(w) for w in fleet])
        baseline = run("naive sort-all (best)", naive.decide, naive.reserve, sessions)
        ours = results["best_fit"]
        print(f"best_fit vs naive sort-all: {ours['per_second'] / baseline['per_second']:.1f}x decisions/s, "
              f"p99 {baseline['p99'] / ours['p99']:.1f}x lower")
    worst = max(r["p99"] for r in results.values())
    print(f"worst p99 over strategies: {worst:.3f} ms (target <= 10 ms): {'met' if worst <= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
