"""The cost ledger read (docs/costs.md): what the intervals of a time window cost, grouped and in time buckets,
and what they cost since the ledger began (the Prometheus counters). Pure: no I/O.

Counting rules:
- a running interval costs its running price over its length, and at least 60 s per start (the shortfall is
  counted at its start, so only in a window that holds the start);
- a stopped interval costs its EBS price;
- savings: a stopped interval of an idle auto-pause or a scale-down saves its running price less its EBS price,
  until it runs again (its end) or the window ends; a worker that a scale-down terminated saves its whole
  running price after its termination until the window ends, but not beyond `SCALE_DOWN_SAVINGS_HORIZON`;
- by track or definition, a running worker's cost goes to the sessions placed on it pro rata of their
  allocation (`share_of`); what no session held, the 60 s shortfalls, the stopped cost and the savings go to the
  group `idle`.
Nothing is counted after `now`: an open interval ends now.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from control_plane_api.domain.cost_ledger import (
    SAVING_REASONS,
    SCALE_DOWN_SAVINGS_HORIZON,
    BilledState,
    HoldingInterval,
    StopReason,
    WorkerInterval,
    running_rate,
    running_shortfall,
    saving_rate,
    seconds,
    share_of,
    stopped_rate,
)

MAX_BUCKETS = 2000
MAX_WINDOW = timedelta(days=366)
IDLE_KEY = "idle"
NONE_KEY = "none"
_DIGITS = 4


class GroupBy(StrEnum):
    POOL = "pool"
    WORKER = "worker"
    TRACK = "track"
    DEFINITION = "definition"


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"


BUCKET_SECONDS = {Bucket.HOUR: 3600, Bucket.DAY: 86400}


@dataclass(frozen=True)
class Window:
    """[start, end), cut in buckets aligned on UTC hours or days (the first may begin before `start`: only
    its part inside the window is counted)."""

    start: datetime
    end: datetime
    bucket_seconds: int

    @property
    def first_bucket(self) -> datetime:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        offset = (self.start - epoch).total_seconds()
        return epoch + timedelta(seconds=math.floor(offset / self.bucket_seconds) * self.bucket_seconds)

    @property
    def bucket_count(self) -> int:
        return max(1, math.ceil(seconds(self.first_bucket, self.end) / self.bucket_seconds))

    def buckets(self) -> list[datetime]:
        first = self.first_bucket
        return [first + timedelta(seconds=i * self.bucket_seconds) for i in range(self.bucket_count)]


def window_problem(start: datetime, end: datetime, bucket: Bucket) -> str | None:
    """Why a window cannot be read (None when it can): the bounds keep every answer's work bounded."""
    if start.tzinfo is None or end.tzinfo is None:
        return "from and to must be ISO 8601 times with a time zone (e.g. 2026-01-01T00:00:00Z)"
    if end <= start:
        return "to must be after from"
    if end - start > MAX_WINDOW:
        return f"the window is at most {MAX_WINDOW.days} days"
    count = Window(start, end, BUCKET_SECONDS[bucket]).bucket_count
    if count > MAX_BUCKETS:
        return f"{count} {bucket.value} buckets: at most {MAX_BUCKETS} (use bucket=day or a shorter window)"
    return None


@dataclass
class GroupCost:
    key: str
    name: str
    series: list[float]
    running_usd: float = 0.0
    stopped_usd: float = 0.0
    running_hours: float = 0.0
    stopped_hours: float = 0.0
    savings_idle_pause_usd: float = 0.0
    savings_scale_down_usd: float = 0.0
    priced: bool = True

    @property
    def total_usd(self) -> float:
        return self.running_usd + self.stopped_usd


@dataclass
class CostReport:
    window: Window
    group_by: GroupBy
    groups: list[GroupCost]
    idle_usd: float
    intervals_read: int

    def totals(self) -> dict[str, float]:
        def total(name: str) -> float:
            return sum(getattr(g, name) for g in self.groups)

        running, stopped = total("running_usd"), total("stopped_usd")
        return {"running_usd": round(running, _DIGITS), "stopped_usd": round(stopped, _DIGITS),
                "total_usd": round(running + stopped, _DIGITS), "idle_usd": round(self.idle_usd, _DIGITS),
                "savings_idle_pause_usd": round(total("savings_idle_pause_usd"), _DIGITS),
                "savings_scale_down_usd": round(total("savings_scale_down_usd"), _DIGITS),
                "running_hours": round(total("running_hours"), _DIGITS),
                "stopped_hours": round(total("stopped_hours"), _DIGITS)}


def _epoch(at: datetime) -> float:
    return at.timestamp()


@dataclass
class _Ledger:
    """The groups being summed, on epoch seconds (floats: a report sums up to hundreds of thousands of
    spans). `spread` lays an hourly price over a span, bucket by bucket."""

    start: float
    end: float
    first: float
    size: float
    count: int
    groups: dict[str, GroupCost] = field(default_factory=dict)
    idle_usd: float = 0.0

    @classmethod
    def of(cls, window: Window, now: datetime) -> _Ledger:
        return cls(start=_epoch(window.start), end=min(_epoch(window.end), _epoch(now)),
                   first=_epoch(window.first_bucket), size=float(window.bucket_seconds), count=window.bucket_count)

    def group(self, key: str, name: str) -> GroupCost:
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = GroupCost(key, name, [0.0] * self.count)
        elif name and key != IDLE_KEY:
            found.name = name  # intervals come oldest first: the latest name stands
        return found

    def spread(self, group: GroupCost, kind: str, a: float, b: float, usd_per_hour: float,
               hour_weight: float = 1.0) -> float:
        """Adds `usd_per_hour` over [a, b) ∩ [window start, min(window end, now)) (and `hour_weight` hours per
        hour) to `group`'s `kind` (running, stopped, savings_idle_pause, savings_scale_down); returns the
        dollars added."""
        a, b = max(a, self.start), min(b, self.end)
        if b <= a:
            return 0.0
        hours = (b - a) / 3600
        usd = usd_per_hour * hours
        if kind == "running":
            group.running_usd += usd
            group.running_hours += hour_weight * hours
        elif kind == "stopped":
            group.stopped_usd += usd
            group.stopped_hours += hour_weight * hours
        elif kind == "savings_idle_pause":
            group.savings_idle_pause_usd += usd
            return usd
        else:
            group.savings_scale_down_usd += usd
            return usd
        per_second = usd_per_hour / 3600
        series, size, first = group.series, self.size, self.first
        index = self._index(a)
        while index < self.count:
            lo = first + index * size
            if lo >= b:
                break
            series[index] += per_second * (min(b, lo + size) - max(a, lo))
            index += 1
        return usd

    def point(self, group: GroupCost, at: float, usd: float, hours: float) -> float:
        """A running amount counted at one instant (the 60 s minimum's shortfall at a start)."""
        if (usd <= 0 and hours <= 0) or not self.start <= at < self.end:
            return 0.0
        group.running_usd += usd
        group.running_hours += hours
        group.series[self._index(at)] += usd
        return usd

    def _index(self, at: float) -> int:
        return min(self.count - 1, max(0, int((at - self.first) // self.size)))


@dataclass(frozen=True)
class _Held:
    """A holding on epoch seconds, with what `_attributed` needs of it."""

    start: float
    until: float
    holding: HoldingInterval


class _WorkerHoldings:
    """One worker's holdings sorted by start: those overlapping a span are found by bisection (a holding
    starts at most `longest` seconds before the span it overlaps), not by a scan of all of them."""

    def __init__(self, holdings: list[HoldingInterval], now: float) -> None:
        held = sorted((_Held(_epoch(h.start), _epoch(h.end) if h.end else math.inf, h) for h in holdings),
                      key=lambda h: h.start)
        self._held = held
        self._starts = [h.start for h in held]
        self._longest = max((min(h.until, now) - h.start for h in held), default=0.0)

    def overlapping(self, a: float, b: float) -> list[_Held]:
        lo = bisect.bisect_left(self._starts, a - self._longest)
        hi = bisect.bisect_left(self._starts, b)
        return [h for h in self._held[lo:hi] if h.until > a]


def _owner(interval: WorkerInterval, group_by: GroupBy) -> tuple[str, str]:
    if group_by is GroupBy.POOL:
        return (interval.pool_id or NONE_KEY), (interval.pool_name or interval.pool_id or NONE_KEY)
    if group_by is GroupBy.WORKER:
        return interval.worker_id, interval.worker_name
    return IDLE_KEY, "idle (held by no session, stopped)"


def _holder(holding: HoldingInterval, group_by: GroupBy) -> tuple[str, str]:
    if group_by is GroupBy.TRACK:
        return (holding.lab_track or NONE_KEY), (holding.lab_track or "no track")
    return holding.definition_id, holding.definition_name


def _savings(ledger: _Ledger, group: GroupCost, interval: WorkerInterval, start: float, end: float) -> None:
    if interval.state is BilledState.STOPPED and interval.stop_reason in SAVING_REASONS:
        ledger.spread(group, f"savings_{interval.stop_reason.value}", start, end, saving_rate(interval))
    if interval.post_termination_savings and interval.end is not None:
        ledger.spread(group, "savings_scale_down", end, end + SCALE_DOWN_SAVINGS_HORIZON.total_seconds(),
                      running_rate(interval))


def _attributed(ledger: _Ledger, interval: WorkerInterval, start: float, end: float, holdings: _WorkerHoldings,
                group_by: GroupBy | None) -> float:
    """A running interval's cost shared among the sessions it held; returns what no session held. With no
    `group_by` (pools, workers), only that remainder is computed: nothing is added to the groups."""
    a, b = max(start, ledger.start), min(end, ledger.end)
    if b <= a:
        return 0.0
    rate = running_rate(interval)
    held = holdings.overlapping(a, b)
    if not held:
        if group_by is None:
            return rate * (b - a) / 3600
        return ledger.spread(ledger.group(IDLE_KEY, _owner(interval, group_by)[1]), "running", a, b, rate)
    marks = sorted({a, b, *(t for h in held for t in (h.start, h.until) if a < t < b)})
    unheld = 0.0
    for lo, hi in itertools.pairwise(marks):
        active = [(h.holding, share_of(h.holding, interval)) for h in held if h.start <= lo and h.until >= hi]
        total = sum(share for _, share in active)
        scale = 1.0 / total if total > 1.0 else 1.0  # over-allocated (declared cores lowered): shares of 1
        rest = max(0.0, 1.0 - total * scale)
        if group_by is None:
            unheld += rate * rest * (hi - lo) / 3600
            continue
        for holding, share in active:
            ledger.spread(ledger.group(*_holder(holding, group_by)), "running", lo, hi, rate * share * scale,
                          share * scale)
        unheld += ledger.spread(ledger.group(IDLE_KEY, _owner(interval, group_by)[1]), "running", lo, hi,
                                rate * rest, rest)
    return unheld


def cost_report(intervals: Iterable[WorkerInterval], holdings: Iterable[HoldingInterval], window: Window,
                group_by: GroupBy, now: datetime) -> CostReport:
    """What the window cost, by `group_by`, groups sorted by total cost (most first, then by key)."""
    ledger = _Ledger.of(window, now)
    now_at = _epoch(now)
    by_worker: dict[str, list[HoldingInterval]] = {}
    for holding in holdings:
        by_worker.setdefault(holding.worker_id, []).append(holding)
    held = {worker: _WorkerHoldings(found, now_at) for worker, found in by_worker.items()}
    nobody = _WorkerHoldings([], now_at)
    ordered = sorted(intervals, key=lambda i: (i.start, i.id))
    sessions_grouping = group_by in (GroupBy.TRACK, GroupBy.DEFINITION)
    for interval in ordered:
        group = ledger.group(*_owner(interval, group_by))
        group.priced = group.priced and interval.priced
        start, end = _epoch(interval.start), _epoch(interval.end) if interval.end else now_at
        if interval.state is BilledState.RUNNING:
            on_worker = held.get(interval.worker_id, nobody)
            if sessions_grouping:
                ledger.idle_usd += _attributed(ledger, interval, start, end, on_worker, group_by)
            else:
                ledger.idle_usd += _attributed(ledger, interval, start, end, on_worker, None)
                ledger.spread(group, "running", start, end, running_rate(interval))
            shortfall = running_shortfall(interval, now)
            ledger.idle_usd += ledger.point(group, start, running_rate(interval) * shortfall / 3600, shortfall / 3600)
        else:
            ledger.spread(group, "stopped", start, end, stopped_rate(interval))
        _savings(ledger, group, interval, start, end)
    groups = sorted(ledger.groups.values(), key=lambda g: (-round(g.total_usd, _DIGITS), g.key))
    return CostReport(window, group_by, groups, ledger.idle_usd, len(ordered))


# ------------------------------------------------------------------------------------------ counters

@dataclass
class Amounts:
    """What intervals cost since they began (the counters' unit): by pool label."""

    running_usd: float = 0.0
    stopped_usd: float = 0.0
    savings_idle_pause_usd: float = 0.0
    savings_scale_down_usd: float = 0.0

    def add(self, other: Amounts) -> None:
        self.running_usd += other.running_usd
        self.stopped_usd += other.stopped_usd
        self.savings_idle_pause_usd += other.savings_idle_pause_usd
        self.savings_scale_down_usd += other.savings_scale_down_usd


def pool_label(interval: WorkerInterval) -> str:
    return interval.pool_name or NONE_KEY


def lifetime_amounts(interval: WorkerInterval, now: datetime) -> Amounts:
    """What one interval has cost and saved from its start until `now` (all of it once `final_at` passed).
    Never decreases as `now` grows: the counters built from it are monotonic."""
    end = min(interval.end or now, now)
    length = seconds(interval.start, end)
    found = Amounts()
    if interval.state is BilledState.RUNNING:
        found.running_usd = running_rate(interval) * (length + running_shortfall(interval, now)) / 3600
    else:
        found.stopped_usd = stopped_rate(interval) * length / 3600
        if interval.stop_reason is StopReason.IDLE_PAUSE:
            found.savings_idle_pause_usd = saving_rate(interval) * length / 3600
        elif interval.stop_reason is StopReason.SCALE_DOWN:
            found.savings_scale_down_usd = saving_rate(interval) * length / 3600
    if interval.post_termination_savings and interval.end is not None:
        after = min(seconds(interval.end, now), SCALE_DOWN_SAVINGS_HORIZON.total_seconds())
        found.savings_scale_down_usd += running_rate(interval) * after / 3600
    return found
