"""The cost report's shape (`GET /api/costs`, docs/costs.md), shared by the control plane and its readers.

Money is in USD rounded to 4 decimals; hours are instance-hours (by track or definition: the sessions' shares of
them). `groups` are sorted by `total_usd`, most first; `series.groups[key]` has one `total_usd` per bucket of
`series.buckets` (bucket starts, aligned on UTC hours or days).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CostTotals(_Shape):
    running_usd: float
    stopped_usd: float
    total_usd: float
    idle_usd: float
    """Running cost that no session held (the 60 s minimums included)."""
    savings_idle_pause_usd: float
    savings_scale_down_usd: float
    running_hours: float
    stopped_hours: float


class CostGroup(_Shape):
    key: str
    """A pool id, worker id, track, definition id, `none` (no pool, no track) or `idle` (by track or
    definition: what no session held, and the stopped cost)."""
    name: str
    running_usd: float
    stopped_usd: float
    total_usd: float
    running_hours: float
    stopped_hours: float
    savings_idle_pause_usd: float
    savings_scale_down_usd: float
    priced: bool = True
    """False when some of its workers have no price (no template, or a template without `cost_per_hour_usd`):
    they count as costing nothing."""


class CostSeries(_Shape):
    buckets: list[datetime]
    groups: dict[str, list[float]]


class CostReportView(_Shape):
    from_: datetime = Field(alias="from")
    to: datetime
    group_by: str
    currency: str = "USD"
    bucket_seconds: int
    totals: CostTotals
    groups: list[CostGroup]
    series: CostSeries
