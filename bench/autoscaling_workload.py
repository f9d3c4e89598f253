"""The workload of bench/autoscaling.py: a term of bookings, the worker template and how long workers take.

Seeded: the same seed gives the same bookings and the same draws of every launch, resume and stop, so the
policies of one run are compared on the same term. Times are seconds from the term's start (a Monday 00:00
UTC); the simulation turns them into datetimes for the code it drives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

TERM_START = datetime(2027, 1, 4, tzinfo=UTC)
"""A Monday."""
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

# The template: m5zn.metal in us-east-1, on demand, with a 500 GB gp3 volume (billed while stopped too).
TEMPLATE_NAME = "m5zn-metal-cml"
INSTANCE_TYPE = "m5zn.metal"
CPU_CORES, MEMORY_GB, STORAGE_GB, MAX_NODES = 48, 192, 500, 250
COST_PER_HOUR_USD = 3.9641
EBS_USD_PER_GB_MONTH = 0.08
HOURS_PER_MONTH = 730.0
STOPPED_COST_PER_HOUR_USD = STORAGE_GB * EBS_USD_PER_GB_MONTH / HOURS_PER_MONTH
LAB_BOOT_MINUTES = (3.0, 8.0)
"""A placed session's lab: CML import and node boot of a CCNA-size lab (see `Durations.lab_boot`)."""
MIN_BILLED_SECONDS = 60.0
"""EC2 bills at least a minute per start."""


@dataclass(frozen=True)
class LabType:
    """The sessions of one lab track (one pool each): what a session reserves, and how many one worker holds."""

    track: str
    definition: str
    cpu_cores: float
    memory_gb: float
    storage_gb: float
    nodes: int
    ports: int
    max_labs_per_worker: int
    courses: int
    """Daily classes on weekdays."""
    ad_hoc_per_day: float
    """Short-notice bookings per weekday (Poisson mean)."""


# A CCNA lab (a few IOSv routers and switches) and an ENCOR one (more, heavier nodes). A worker holds 10 and
# 6 of them: 40 of its 48 cores and 120 GB, or 48 cores and 144 GB; a class of 40 needs 4 or 7 workers.
LAB_TYPES = (
    LabType("ccna", "ccna-lab", cpu_cores=4, memory_gb=12, storage_gb=20, nodes=8, ports=2, max_labs_per_worker=10,
            courses=3, ad_hoc_per_day=8),
    LabType("encor", "encor-lab", cpu_cores=8, memory_gb=24, storage_gb=40, nodes=12, ports=2,
            max_labs_per_worker=6, courses=2, ad_hoc_per_day=5),
)


@dataclass(frozen=True)
class BookedSession:
    """One session: booked at `booked_at` for the timeslot [`start`, `end`)."""

    id: str
    lab: LabType
    kind: str
    """"class" (booked days ahead) or "ad-hoc" (booked 15 min to 2 h ahead)."""
    booked_at: float
    start: float
    end: float

    @property
    def notice(self) -> float:
        return self.start - self.booked_at


def _weekdays(days: int) -> list[int]:
    return [d for d in range(days) if (TERM_START.weekday() + d) % 7 < 5]


def term(days: int, seed: int) -> list[BookedSession]:
    """The bookings of a term of `days`, ordered by when they are made.

    Classes: each lab type has `courses` courses, each with a fixed timeslot (starting between 08:00 and
    16:00 on the half hour, 2 to 4 hours) every weekday and a usual size of 10 to 40 students; each day's
    attendance varies by a fifth around it. A class is booked 1 to 7 days ahead (during the working day;
    those of the first days are known at the start). Ad-hoc: a Poisson number per weekday of 1 to 3 sessions
    of 1 to 3 hours, starting between 08:00 and 18:00 and booked 15 minutes to 2 hours ahead."""
    bookings: list[BookedSession] = []
    for lab in LAB_TYPES:
        rng = random.Random(f"{seed}:{lab.track}")
        courses = []
        for _ in range(lab.courses):
            courses.append((rng.randrange(16, 33) * 30 * MINUTE, rng.choice((2, 3, 4)) * HOUR, rng.randint(10, 40)))
        for day in _weekdays(days):
            rng = random.Random(f"{seed}:{lab.track}:{day}")  # a shorter term is the start of a longer one
            for c, (begin, length, size) in enumerate(courses):
                start = day * DAY + begin
                booked_at = max(0.0, start - rng.randint(1, 7) * DAY + rng.uniform(-3, 3) * HOUR)
                attendance = max(10, min(40, round(size * rng.uniform(0.8, 1.2))))
                bookings += [BookedSession(f"{lab.track}-d{day:02d}-c{c}-{n:02d}", lab, "class", booked_at, start,
                                           start + length) for n in range(attendance)]
            for b in range(_poisson(rng, lab.ad_hoc_per_day)):
                start = day * DAY + 8 * HOUR + rng.randrange(0, 10 * 12) * 5 * MINUTE
                booked_at = start - rng.uniform(15 * MINUTE, 2 * HOUR)
                length = rng.choice((1, 2, 3)) * HOUR
                bookings += [BookedSession(f"{lab.track}-d{day:02d}-a{b:02d}-{n}", lab, "ad-hoc", booked_at, start,
                                           start + length) for n in range(rng.randint(1, 3))]
    bookings.sort(key=lambda b: (b.booked_at, b.id))
    return bookings


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's draw (small means)."""
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class Durations:
    """How long a worker takes, drawn uniformly from realistic ranges (seconds): a launch is EC2's launch (2-4
    min), CML's boot and image copy (5-9 min) and the licence registration (0.5-2 min); a resume is EC2's start
    (1-3 min), CML's boot (2-4 min) and the licence (0.5-2 min); a retirement deregisters the licence (0.5-2
    min) and stops or terminates the instance (1-2 min). A seeded stream per kind: the n-th launch (resume,
    retirement) of every policy takes the same time.

    A session's lab is imported and booted on its worker after the session is placed: 3-8 min for a CCNA-size
    lab (CML's import of the topology, then 8-12 IOSv/IOSvL2 nodes booting in parallel to their prompt; the
    upper end when the worker boots several labs at once). Drawn per session from the seed and the session's
    id, so each session's lab takes the same time under every policy whenever and wherever it is placed."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._launches, self._resumes, self._retirements = (random.Random(seed * 3 + k) for k in range(3))

    @staticmethod
    def _between(rng: random.Random, low_min: float, high_min: float) -> float:
        return rng.uniform(low_min, high_min) * MINUTE

    def launch(self) -> tuple[float, float, float]:
        """(EC2 launch, CML boot and image copy, licence registration)."""
        r = self._launches
        return self._between(r, 2, 4), self._between(r, 5, 9), self._between(r, 0.5, 2)

    def resume(self) -> tuple[float, float, float]:
        """(EC2 start, CML boot, licence registration)."""
        r = self._resumes
        return self._between(r, 1, 3), self._between(r, 2, 4), self._between(r, 0.5, 2)

    def lab_boot(self, session_id: str) -> float:
        """How long the session's lab takes from its placement to ready (import and node boot)."""
        return self._between(random.Random(f"{self._seed}:lab-boot:{session_id}"), *LAB_BOOT_MINUTES)

    def retire(self) -> tuple[float, float]:
        """(licence deregistration, EC2 stop or terminate)."""
        r = self._retirements
        return self._between(r, 0.5, 2), self._between(r, 1, 2)
