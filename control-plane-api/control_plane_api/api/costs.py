"""`GET /api/costs` (viewer): what the fleet cost over a window, grouped by pool, worker, track or definition, in
hourly or daily buckets (docs/costs.md). The shape is `lcm_core.domain.costs.CostReportView`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from control_plane_api.api.security import CP, Viewer
from control_plane_api.domain.cost_report import Bucket, CostReport, GroupBy
from lcm_core.domain.costs import CostGroup, CostReportView, CostSeries, CostTotals
from lcm_core.errors import InvalidError

router = APIRouter(prefix="/api/costs", tags=["costs"])

DEFAULT_WINDOW = timedelta(hours=24)
_DIGITS = 4
_TIME = "ISO 8601 with a time zone, e.g. 2026-01-01T00:00:00Z"
#: The times a window may name: the bounds keep the date arithmetic far from datetime's limits.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
Id = Annotated[str | None, Query(min_length=1, max_length=128)]


def _instant(name: str, found: datetime | None, default: datetime) -> datetime:
    if found is None:
        return default
    if found.tzinfo is None:
        raise InvalidError(f"{name} has no time zone: add Z or an offset such as +00:00", field=name)
    if not EARLIEST <= found <= LATEST:
        raise InvalidError(f"{name} must lie between the years {EARLIEST.year} and {LATEST.year}", field=name)
    return found.astimezone(UTC)


def view(report: CostReport) -> CostReportView:
    window = report.window
    groups = [CostGroup(
        key=g.key, name=g.name, running_usd=round(g.running_usd, _DIGITS), stopped_usd=round(g.stopped_usd, _DIGITS),
        total_usd=round(g.total_usd, _DIGITS), running_hours=round(g.running_hours, _DIGITS),
        stopped_hours=round(g.stopped_hours, _DIGITS), savings_idle_pause_usd=round(g.savings_idle_pause_usd, _DIGITS),
        savings_scale_down_usd=round(g.savings_scale_down_usd, _DIGITS), priced=g.priced) for g in report.groups]
    return CostReportView(
        from_=window.start, to=window.end, group_by=report.group_by.value, bucket_seconds=window.bucket_seconds,
        totals=CostTotals(**report.totals()), groups=groups,
        series=CostSeries(buckets=window.buckets(),
                          groups={g.key: [round(v, _DIGITS) for v in g.series] for g in report.groups}))


@router.get("", summary="Cost of the fleet over a window (default: the last 24 h, by pool, hourly)",
            response_model_by_alias=True)
async def costs(
    cp: CP, _who: Viewer,
    from_: Annotated[datetime | None, Query(alias="from", description=_TIME)] = None,
    to: Annotated[datetime | None, Query(description=_TIME)] = None,
    group_by: GroupBy = GroupBy.POOL,
    bucket: Bucket = Bucket.HOUR,
    pool_id: Id = None,
    worker_id: Id = None,
) -> CostReportView:
    now = datetime.now(UTC)
    end = _instant("to", to, now)
    start = _instant("from", from_, end - DEFAULT_WINDOW)
    report = await cp.costs.report(start, end, group_by, bucket, pool_id=pool_id, worker_id=worker_id)
    return view(report)
