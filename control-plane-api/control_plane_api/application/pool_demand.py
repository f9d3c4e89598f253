"""What a pool will need (a mixin of `PoolService`, docs/pools.md "Capacity ahead of demand"): what the
autoscaler decides from (`work`: the pool, its workers, the sessions waiting for it and booked on its track, its
template's lead times and cost) and the forecast the pool's page charts (`forecast`).

Both read the bookings and the lead times the same way, so that the page shows the demand the autoscaler
sizes the pool for.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from control_plane_api.domain.lead_times import SAMPLES_KEPT, LeadKind
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.domain.system_settings import WorkerTemplate
from lcm_core.domain.pool_capacity import pool_capacity
from lcm_core.domain.pool_forecast import Booking, LeadTime, demand_steps, lead_time
from lcm_core.domain.pools import PoolForecast, PoolWork
from lcm_core.domain.workers import Resources
from lcm_core.errors import NotFoundError

if TYPE_CHECKING:
    from control_plane_api.application.ports import (
        LeadTimeSamples,
        PoolSessions,
        PoolStore,
        PoolWorkers,
        TemplateSource,
    )

#: Most bookings one read returns (the earliest): far beyond what one pool's look-ahead holds.
MAX_BOOKINGS = 5000
#: Longest forecast a page may ask for.
MAX_FORECAST_HOURS = 168


class PoolDemand:
    """Behaviour only: `PoolService` supplies the stores named below."""

    if TYPE_CHECKING:
        _store: PoolStore
        _workers: PoolWorkers
        _templates: TemplateSource
        _sessions: PoolSessions
        _lead_times: LeadTimeSamples
        _clock: Callable[[], datetime]

    async def _template(self, pool: WorkerPool) -> WorkerTemplate | None:
        try:
            return await self._templates.get(pool.template_name)
        except NotFoundError:
            return None

    async def _bookings(self, pool: WorkerPool, start: datetime, minutes: float) -> list[Booking]:
        return await self._sessions.booked_for_track(pool.lab_track, start, start + timedelta(minutes=minutes),
                                                     MAX_BOOKINGS)

    async def lead_time(self, pool: WorkerPool) -> LeadTime:
        """The p95 of the lead times measured of the pool's template, the pool's defaults until enough were."""
        provision = await self._lead_times.recent(pool.template_name, LeadKind.PROVISION, SAMPLES_KEPT)
        resume = await self._lead_times.recent(pool.template_name, LeadKind.RESUME, SAMPLES_KEPT)
        return lead_time(provision, resume, default_provision_seconds=pool.scaling.provision_lead_minutes * 60,
                         default_resume_seconds=pool.scaling.resume_lead_minutes * 60)

    async def work(self, pool_id: str) -> PoolWork:
        """What the autoscaler decides from: the pool, its members' rows, the sessions waiting for it and those
        booked on its track within its look-ahead, its template's lead times, and what the template offers
        (`template_found` False when it is gone)."""
        pool = await self._store.get(pool_id)
        now = self._clock()
        members = await self._workers.members(pool.id)
        template = await self._template(pool)
        waiting = await self._sessions.waiting_for_pool(pool.id, template.capacity if template else None)
        return PoolWork(pool=pool.view(), workers=members, waiting=waiting, template_found=template is not None,
                        template_enabled=template is not None and template.enabled,
                        template_capacity=template.capacity if template else Resources(),
                        template_regions=sorted(template.regions) if template else [],
                        template_cost_per_hour_usd=template.cost_per_hour_usd if template else None,
                        bookings=await self._bookings(pool, now, pool.scaling.look_ahead_minutes
                                                      + pool.scaling.ready_ahead_minutes),
                        lead_time=await self.lead_time(pool), observed_at=now)

    async def forecast(self, pool_id: str, hours: float | None = None) -> PoolForecast:
        """The pool's booked demand over its look-ahead (or the next `hours`) as steps, against its workers
        now: counted, ready, parked, and what the counted ones cost per hour running."""
        pool = await self._store.get(pool_id)
        now = self._clock()
        minutes = hours * 60 if hours is not None else pool.scaling.look_ahead_minutes
        template = await self._template(pool)
        per_worker = template.capacity if template else Resources()
        held_ahead = timedelta(minutes=pool.scaling.ready_ahead_minutes)  # as the autoscaler counts them
        steps = demand_steps(await self._bookings(pool, now, minutes + pool.scaling.ready_ahead_minutes), now,
                             now + timedelta(minutes=minutes), labs_per_worker=pool.scaling.max_labs_per_worker,
                             per_worker=per_worker, held_ahead=held_ahead)
        capacity = pool_capacity(await self._workers.members(pool.id))
        price = template.cost_per_hour_usd if template else None
        return PoolForecast(pool_id=pool.id, at=now, look_ahead_minutes=minutes, steps=steps,
                            lead_time=await self.lead_time(pool), desired_workers=pool.desired_workers,
                            ready_workers=capacity.ready, parked_workers=capacity.parked,
                            max_workers=pool.scaling.max_workers, labs_per_worker=pool.scaling.max_labs_per_worker,
                            cost_per_hour_usd=None if price is None else round(price * capacity.workers, 4))


__all__ = ["MAX_BOOKINGS", "MAX_FORECAST_HOURS", "PoolDemand"]
