"""The cost ledger's records and prices (docs/costs.md). Pure: no I/O.

A worker's life is a sequence of billed intervals: `running` (the instance is billed: RUNNING or DRAINING) and
`stopped` (only its EBS volume is billed: STOPPING or STOPPED). Each interval keeps what it is priced at as it
was when it opened (the template's `cost_per_hour_usd`, the EBS price of the template's volume), so that a later
change of the template does not rewrite the past. A session holds a share of its worker while it is placed on
it (from scheduled to release): a `HoldingInterval`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from control_plane_api.domain.system_settings import EbsSettings
from lcm_core.domain.enums import DesiredStatus, PauseReason, WorkerStatus

#: us-east-1 list prices of EBS (USD): gp3 storage per GB-month (its baseline 3000 IOPS and 125 MB/s are free),
#: io1 storage per GB-month and io1 provisioned IOPS per IOPS-month. AWS bills a month as 730 hours.
GP3_USD_PER_GB_MONTH = 0.08
IO1_USD_PER_GB_MONTH = 0.125
IO1_USD_PER_IOPS_MONTH = 0.065
HOURS_PER_MONTH = 730.0

#: EC2 bills at least this much running time each time an instance starts.
MINIMUM_RUNNING_SECONDS = 60.0
#: How long after its termination a worker that a pool scaled down is counted as saving what it would have
#: cost to keep running (after that, the pool would have retired it anyway, or the saving is the fleet's shape).
SCALE_DOWN_SAVINGS_HORIZON = timedelta(hours=24)
#: The `until` of an interval still open: a real date far ahead, so that one range index serves every query.
OPEN_UNTIL = datetime(9999, 12, 31, 23, 59, 59)
#: What the desired-status reason of a pool's retirement contains (`worker_membership.retire_from_pool`:
#: "retired by pool NAME", or "drained (retired by pool NAME)" once its drain ends).
RETIRED_MARK = "retired by pool "
#: What the desired-status reason of a warmed-up worker's stop contains (`worker_membership.retire_from_pool`):
#: it was launched to be stopped, so its stopped time saves nothing.
WARM_POOL_MARK = "into the warm pool of pool "


class BilledState(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class StopReason(StrEnum):
    IDLE_PAUSE = "idle_pause"
    SCALE_DOWN = "scale_down"
    WARM_POOL = "warm_pool"
    """Launched into a pool's warm pool and stopped once booted: no saving."""
    OPERATOR = "operator"
    OTHER = "other"


#: The reasons whose stopped time counts as savings.
SAVING_REASONS = frozenset({StopReason.IDLE_PAUSE, StopReason.SCALE_DOWN})
_RUNNING = frozenset({WorkerStatus.RUNNING, WorkerStatus.DRAINING})
_STOPPED = frozenset({WorkerStatus.STOPPING, WorkerStatus.STOPPED})
_GONE = frozenset({WorkerStatus.TERMINATING, WorkerStatus.TERMINATED})


def billed_state(status: WorkerStatus) -> BilledState | None:
    """What a status is billed as; None for the statuses in which nothing is counted (pending, provisioning,
    starting: short; terminating, terminated: gone; failed, unknown: not known to exist)."""
    if status in _RUNNING:
        return BilledState.RUNNING
    if status in _STOPPED:
        return BilledState.STOPPED
    return None


def is_gone(status: WorkerStatus) -> bool:
    return status in _GONE


def stop_reason(desired_status: DesiredStatus | None, desired_reason: str | None,
                pause_reason: str | None) -> StopReason:
    """Why a worker went down, from what was asked of it: a pool's retirement (scale-down), idle auto-pause, an
    operator's stop (or drain), or nothing LCM asked for (stopped outside LCM: `other`)."""
    if desired_reason and WARM_POOL_MARK in desired_reason:
        return StopReason.WARM_POOL
    if desired_reason and RETIRED_MARK in desired_reason:
        return StopReason.SCALE_DOWN
    if desired_status is DesiredStatus.STOPPED and pause_reason == PauseReason.IDLE_TIMEOUT:
        return StopReason.IDLE_PAUSE
    if desired_status in (DesiredStatus.STOPPED, DesiredStatus.TERMINATED):
        return StopReason.OPERATOR
    return StopReason.OTHER


def ebs_cost_per_hour(ebs: EbsSettings) -> float:
    """The hourly price of a template's EBS volume at the list prices above (io1: storage plus provisioned
    IOPS; an io1 volume without IOPS set is priced for storage alone)."""
    if ebs.volume_type == "io1":
        monthly = ebs.size_gb * IO1_USD_PER_GB_MONTH + (ebs.iops or 0) * IO1_USD_PER_IOPS_MONTH
    else:
        monthly = ebs.size_gb * GP3_USD_PER_GB_MONTH
    return monthly / HOURS_PER_MONTH


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class WorkerInterval(_Record):
    """One billed interval of one worker. `end` is None while it is open."""

    id: str
    worker_id: str
    worker_name: str
    pool_id: str | None = None
    pool_name: str | None = None
    template_name: str | None = None
    state: BilledState
    start: datetime
    end: datetime | None = None
    priced: bool
    """False when the worker has no template or its template has no `cost_per_hour_usd`: its cost is 0."""
    cost_per_hour_usd: float = 0.0
    """The template's running price when the interval opened (0 when unpriced)."""
    ebs_cost_per_hour_usd: float = 0.0
    """The template's EBS price when the interval opened (0 when unpriced)."""
    stop_reason: StopReason | None = None
    """Why a stopped interval stopped (None for a running one)."""
    terminated_reason: StopReason | None = None
    """Set when the interval was closed by the worker's termination: why it went."""
    declared_cpu_cores: float = 0.0
    declared_memory_gb: float = 0.0
    worker_version: int = 0
    """The worker's version that opened it: an older change recorded late does not close it."""
    settled: bool = False
    """Whether its final cost is in the running totals (`CostTotals`); see `final_at`."""

    @property
    def until(self) -> datetime:
        return self.end or OPEN_UNTIL.replace(tzinfo=self.start.tzinfo)

    @property
    def post_termination_savings(self) -> bool:
        """A worker a pool scaled down and terminated saves its running price after it is gone (bounded)."""
        return self.terminated_reason is StopReason.SCALE_DOWN or (
            self.terminated_reason is not None and self.stop_reason is StopReason.SCALE_DOWN)

    def final_at(self) -> datetime | None:
        """When nothing more will be counted for it (None while open): its end, or the end of the savings of
        a scale-down termination."""
        if self.end is None:
            return None
        return self.end + SCALE_DOWN_SAVINGS_HORIZON if self.post_termination_savings else self.end


class HoldingInterval(_Record):
    """A session placed on a worker, from its scheduling to the release of its capacity."""

    id: str
    """The session's id (a session is placed at most once at a time; a re-placement replaces the record)."""
    session_id: str
    worker_id: str
    lab_track: str | None = None
    definition_id: str
    definition_name: str
    cpu_cores: float = 0.0
    memory_gb: float = 0.0
    start: datetime
    end: datetime | None = None

    @property
    def until(self) -> datetime:
        return self.end or OPEN_UNTIL.replace(tzinfo=self.start.tzinfo)


def share_of(holding: HoldingInterval, interval: WorkerInterval) -> float:
    """A session's share of its worker: its cores over the worker's declared cores, or its memory over the
    declared memory when the worker declares no cores; 0 when neither is declared. At most 1."""
    if interval.declared_cpu_cores > 0:
        return min(1.0, holding.cpu_cores / interval.declared_cpu_cores)
    if interval.declared_memory_gb > 0:
        return min(1.0, holding.memory_gb / interval.declared_memory_gb)
    return 0.0


def seconds(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


def running_shortfall(interval: WorkerInterval, now: datetime) -> float:
    """The seconds a running interval is billed beyond its length (the 60 s minimum per start)."""
    if interval.state is not BilledState.RUNNING:
        return 0.0
    return max(0.0, MINIMUM_RUNNING_SECONDS - seconds(interval.start, interval.end or now))


def running_rate(interval: WorkerInterval) -> float:
    return interval.cost_per_hour_usd if interval.priced else 0.0


def stopped_rate(interval: WorkerInterval) -> float:
    return interval.ebs_cost_per_hour_usd if interval.priced else 0.0


def saving_rate(interval: WorkerInterval) -> float:
    """What a stopped hour saves: the running price it did not pay, less the EBS it paid (never below 0)."""
    return max(0.0, running_rate(interval) - stopped_rate(interval))
