"""A pool's demand ahead of time, from the sessions booked on its track, and how long its workers take to get
ready (docs/pools.md, "Capacity ahead of demand"). No I/O, no clock: every function takes the moment.

A CML fleet knows its demand in advance: sessions are booked for timeslots. `demand_steps` turns the bookings
into the pool's need as a step function (the workers needed between two moments where a booking starts or ends);
`lead_time` is how long a new worker (provisioned from the template) or a stopped one (resumed) takes to serve,
learned from measurements. The autoscaler sizes the pool so that the workers a timeslot needs are ready when it
starts; the control plane shows the same steps on the pool's page; the benchmark drives the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Annotated

from pydantic import Field

from lcm_core.domain.cml_snapshot import StrictModel
from lcm_core.domain.pool_capacity import workers_for
from lcm_core.domain.types import Count, Instant, Number
from lcm_core.domain.workers import Resources

#: Most steps a forecast keeps (a decision records them; the pool page charts them).
MAX_STEPS = 96
#: Measurements a lead time is computed over (the most recent ones).
LEAD_TIME_WINDOW = 20
#: Measurements needed before they count at all (with fewer than `LEAD_TIME_WINDOW`, never below the default).
LEAD_TIME_MIN_SAMPLES = 3
#: Longer measurements are not lead times (a worker left unlicensed for a day, a CML fixed by hand hours later):
#: they are left out. The longest lead time a pool may be configured with.
MAX_LEAD_SECONDS = 240 * 60


class Booking(StrictModel):
    """A session of the pool's track whose timeslot has not ended: pending, or holding a worker (`worker_id`)."""

    session_id: Annotated[str, Field(max_length=64)]
    timeslot_start: Instant
    timeslot_end: Instant
    cpu_cores: Number = Field(default=0, ge=0)
    memory_gb: Number = Field(default=0, ge=0)
    worker_id: Annotated[str, Field(max_length=64)] | None = None
    definition_id: Annotated[str, Field(max_length=64)] | None = None


class DemandStep(StrictModel):
    """The pool's booked demand from `start` to `end`: constant in between."""

    start: Instant
    end: Instant
    sessions: Count = 0
    cpu_cores: Number = 0
    memory_gb: Number = 0
    workers: Count = 0
    """Workers these sessions need (`workers_needed`)."""


class LeadTime(StrictModel):
    """How long a worker takes from the decision to serving sessions: p95 of the template's recent measurements
    (`lead_time`), never shorter than the pool's configured default until `LEAD_TIME_WINDOW` were measured."""

    provision_seconds: Number = Field(default=900, ge=0)
    """Launched from the template: EC2 launch, CML boot and image copy, licence registration."""
    resume_seconds: Number = Field(default=480, ge=0)
    """Resumed from stopped: EC2 start, CML boot, licence registration."""
    provision_samples: Count = 0
    resume_samples: Count = 0

    @property
    def provision_measured(self) -> bool:
        return self.provision_samples >= LEAD_TIME_WINDOW

    @property
    def resume_measured(self) -> bool:
        return self.resume_samples >= LEAD_TIME_WINDOW

    def seconds(self, kind: str | None) -> float:
        """The lead time of a "resume", or of a "provision" (and of anything unknown: the longer)."""
        return self.resume_seconds if kind == "resume" else self.provision_seconds

    def describe(self) -> str:
        def one(seconds: float, samples: int) -> str:
            if samples >= LEAD_TIME_WINDOW:
                source = f"p95 of {LEAD_TIME_WINDOW}"
            elif samples >= LEAD_TIME_MIN_SAMPLES:
                source = f"{samples} measured, at least the default"
            else:
                source = "default"
            return f"{seconds / 60:.1f} min ({source})"
        return (f"provision {one(self.provision_seconds, self.provision_samples)}, "
                f"resume {one(self.resume_seconds, self.resume_samples)}")


def p95(values: Sequence[float]) -> float:
    """The 95th percentile (nearest rank) of `values`, which must not be empty."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def lead_time(provision: Sequence[float], resume: Sequence[float], *, default_provision_seconds: float,
              default_resume_seconds: float) -> LeadTime:
    """The lead times from measured durations (oldest first; the last `LEAD_TIME_WINDOW` count). With fewer
    than `LEAD_TIME_MIN_SAMPLES`, the configured default; with fewer than `LEAD_TIME_WINDOW`, the longer of the
    default and their p95 (the p95 of a handful is their maximum, which underestimates a long tail: a launch
    counted on too short a lead time is late); from `LEAD_TIME_WINDOW` on, the p95 of the last ones."""
    def learned(samples: Sequence[float], default: float) -> float:
        recent = [s for s in samples if s <= MAX_LEAD_SECONDS][-LEAD_TIME_WINDOW:]
        if len(recent) < LEAD_TIME_MIN_SAMPLES:
            return default
        measured = round(p95(recent), 1)
        return measured if len(recent) >= LEAD_TIME_WINDOW else max(default, measured)
    return LeadTime(provision_seconds=learned(provision, default_provision_seconds),
                    resume_seconds=learned(resume, default_resume_seconds),
                    provision_samples=sum(1 for s in provision if s <= MAX_LEAD_SECONDS),
                    resume_samples=sum(1 for s in resume if s <= MAX_LEAD_SECONDS))


def workers_needed(sessions: int, cpu_cores: float, memory_gb: float, *, labs_per_worker: int,
                   per_worker: Resources) -> int:
    """Workers that hold `sessions` needing these resources: at most `labs_per_worker` sessions each, and no
    more cores or memory than one worker declares (unknown capacity: sessions only)."""
    needed = workers_for(sessions, labs_per_worker)
    if sessions and per_worker.cpu_cores:
        needed = max(needed, math.ceil(round(cpu_cores / per_worker.cpu_cores, 6)))
    if sessions and per_worker.memory_gb:
        needed = max(needed, math.ceil(round(memory_gb / per_worker.memory_gb, 6)))
    return needed


def demand_steps(bookings: Iterable[Booking], start: datetime, end: datetime, *, labs_per_worker: int,
                 per_worker: Resources) -> list[DemandStep]:
    """The booked demand between `start` and `end` as consecutive steps (a new step wherever a booking starts
    or ends), the steps of no demand included. At most `MAX_STEPS`: later ones are merged into the last,
    keeping its peak. A sweep over the bookings' edges with running sums: O(n log n)."""
    if end <= start:
        return []
    changes: dict[datetime, list[float]] = {start: [0, 0.0, 0.0], end: [0, 0.0, 0.0]}
    for b in bookings:
        if b.timeslot_end <= start or b.timeslot_start >= end or b.timeslot_end <= b.timeslot_start:
            continue
        for at, sign in ((max(b.timeslot_start, start), 1), (min(b.timeslot_end, end), -1)):
            change = changes.setdefault(at, [0, 0.0, 0.0])
            change[0] += sign
            change[1] += sign * b.cpu_cores
            change[2] += sign * b.memory_gb
    sessions, cpu, memory = 0, 0.0, 0.0
    steps: list[DemandStep] = []
    edges = sorted(changes)
    for begin, finish in pairwise(edges):
        sessions += int(changes[begin][0])
        cpu += changes[begin][1]
        memory += changes[begin][2]
        here = (sessions, round(max(cpu, 0.0), 3), round(max(memory, 0.0), 3))
        previous = steps[-1] if steps else None
        if previous is not None and (previous.sessions, previous.cpu_cores, previous.memory_gb) == here:
            previous.end = finish
            continue
        steps.append(DemandStep(start=begin, end=finish, sessions=here[0], cpu_cores=here[1], memory_gb=here[2],
                                workers=workers_needed(here[0], here[1], here[2], labs_per_worker=labs_per_worker,
                                                       per_worker=per_worker)))
    if len(steps) > MAX_STEPS:
        tail = steps[MAX_STEPS - 1:]
        peak = max(tail, key=lambda s: s.workers)
        steps = [*steps[:MAX_STEPS - 1], peak.model_copy(update={"start": tail[0].start, "end": tail[-1].end})]
    return steps


def peak_workers(steps: Iterable[DemandStep], start: datetime, end: datetime) -> int:
    """The most workers any step overlapping [`start`, `end`] needs (0 when none does)."""
    return max((s.workers for s in steps if s.end > start and s.start <= end), default=0)


__all__ = ["LEAD_TIME_MIN_SAMPLES", "LEAD_TIME_WINDOW", "MAX_LEAD_SECONDS", "MAX_STEPS", "Booking", "DemandStep",
           "LeadTime", "demand_steps", "lead_time", "p95", "peak_workers", "workers_needed"]
