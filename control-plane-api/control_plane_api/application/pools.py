"""Worker-pool use cases (docs/pools.md): an operator's create, update, scale, drain, delete, adopt and release,
the reads; what the autoscaler reads of a pool and the forecast are `PoolDemand`, its evaluations
`PoolEvaluations`.

Every change goes through one read-modify-write (`application.versioned.mutate`), then publishes the pool's
events, each carrying the pool as it stands after the change (`data.pool`, a `PoolView`), and writes the etcd
key `{prefix}/pools/{id}/desired` so that the autoscaler, which watches `{prefix}/pools/`, looks at the pool
at once. A terminated pool's keys are deleted (the deletion wakes the watch too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from control_plane_api.application import versioned
from control_plane_api.application.pool_demand import PoolDemand
from control_plane_api.application.pool_evaluation import PoolEvaluations
from control_plane_api.application.ports import (
    LeadTimeSamples,
    PoolKeys,
    PoolSessions,
    PoolStore,
    PoolWorkers,
    Publisher,
    TemplateSource,
)
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.domain.system_settings import WorkerTemplate
from lcm_core.domain.enums import WorkerStatus
from lcm_core.domain.pools import PoolSpec, ScaleRequest, ScalingDecision
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import ConflictError, InvalidError, LcmError, NotFoundError, VersionConflict

logger = logging.getLogger(__name__)

PoolChange = Callable[[WorkerPool, datetime], list[DomainEvent]]


class PoolService(PoolDemand, PoolEvaluations):
    def __init__(self, pools: PoolStore, workers: PoolWorkers, templates: TemplateSource, sessions: PoolSessions,
                 publisher: Publisher, keys: PoolKeys, lead_times: LeadTimeSamples,
                 clock: Callable[[], datetime] = utcnow, max_attempts: int = 8) -> None:
        self._store = pools
        self._lead_times = lead_times
        self._workers = workers
        self._templates = templates
        self._sessions = sessions
        self._publisher = publisher
        self._keys = keys
        self._clock = clock
        self._attempts = max_attempts

    # ----------------------------------------------------------------- plumbing

    async def _published(self, pool: WorkerPool, events: list[DomainEvent], *, wake: bool) -> None:
        """Publish the events with the pool as it now stands; wake the autoscaler up when `wake` (an operator's
        change: the autoscaler's own report needs no wake-up), or drop the keys of a terminated pool."""
        shown = pool.view().model_dump(mode="json")
        for event in events:
            event.data["pool"] = shown
        await self._publisher.publish(events)
        if pool.terminated:
            await self._keys.delete_prefix(self._keys.pool_key(pool.id, ""))
        elif wake:
            await self._keys.put_json(self._keys.pool_key(pool.id, "desired"),
                                      {"pool_id": pool.id, "version": pool.version})

    async def _after_operator_change(self, pool: WorkerPool, events: list[DomainEvent]) -> None:
        await self._published(pool, events, wake=True)

    async def _change(self, pool_id: str, change: PoolChange, attempts: int | None = None) -> WorkerPool:
        done = await versioned.mutate(self._store, pool_id, change, clock=self._clock,
                                      attempts=attempts or self._attempts, after_commit=self._after_operator_change)
        return done.aggregate

    async def _check_template(self, spec: PoolSpec) -> WorkerTemplate:
        """The template a spec names must exist, and place workers in every region the spec names."""
        try:
            template = await self._templates.get(spec.template_name)
        except NotFoundError as exc:
            raise InvalidError(f"template {spec.template_name!r} does not exist: create it first "
                               "(POST /api/templates)") from exc
        missing = [region for region in spec.regions if template.regions and region not in template.regions]
        if missing:
            raise InvalidError(f"template {template.name!r} has no placement for {', '.join(missing)} (it has "
                               f"{', '.join(sorted(template.regions))})")
        return template

    # ----------------------------------------------------------------- reads

    async def get(self, pool_id: str) -> WorkerPool:
        return await self._store.get(pool_id)

    async def page(self, include_terminated: bool, offset: int, limit: int) -> tuple[list[WorkerPool], int]:
        """A page of pools by name (the terminated ones only when asked), and how many there are in all."""
        return await self._store.page(include_terminated, offset, limit)

    async def live(self) -> list[WorkerPool]:
        """Every pool that is not terminated (what the autoscaler evaluates)."""
        return await self._store.live()

    async def detail(self, pool_id: str) -> tuple[WorkerPool, list[WorkerSummary]]:
        """A pool and its members' rows."""
        pool = await self._store.get(pool_id)
        return pool, await self._workers.members(pool.id)

    async def history(self, pool_id: str) -> list[ScalingDecision]:
        """The pool's scaling decisions, newest first."""
        return list(reversed((await self._store.get(pool_id)).history))

    # ----------------------------------------------------------------- an operator's changes

    async def _check_unique(self, pool_id: str, spec: PoolSpec) -> None:
        why = await self._store.conflicting(pool_id, spec.name, spec.lab_track)
        if why is not None:
            raise ConflictError(why, pool_id=pool_id)

    async def create(self, spec: PoolSpec, by: str) -> WorkerPool:
        await self._check_template(spec)
        pool, events = WorkerPool.created(spec, self._clock(), by)
        await self._check_unique(pool.id, spec)
        await self._store.insert(pool)
        await self._after_operator_change(pool, events)
        return pool

    async def update(self, pool_id: str, spec: PoolSpec, expected_spec_version: int, by: str) -> WorkerPool:
        """Replace the spec of the pool as the operator read it (`expected_spec_version`; 409 when another
        change of the spec came since: the autoscaler's reports, which move the pool's `version`, do not count).
        When the lab track changes, the members that served the old one serve the new one."""
        current = await self._store.get(pool_id)
        if (spec.template_name, spec.regions) != (current.template_name, current.regions):
            await self._check_template(spec)
        if (spec.name, spec.lab_track) != (current.name, current.lab_track):
            await self._check_unique(pool_id, spec)
        old_track: dict[str, str] = {}

        def change(pool: WorkerPool, now: datetime) -> list[DomainEvent]:
            if pool.spec_version != expected_spec_version:
                raise VersionConflict(f"pool {pool.name!r}'s spec changed since spec_version {expected_spec_version} "
                                      f"(it is at {pool.spec_version}); read it again and repeat the change",
                                      pool_id=pool.id)
            old_track["it"] = pool.lab_track
            return pool.update(spec, now, by)

        pool = await self._change(pool_id, change)
        if old_track.get("it", pool.lab_track) != pool.lab_track:
            await self._retrack_members(pool, old_track["it"], by)
        return pool

    async def _retrack_members(self, pool: WorkerPool, old_track: str, by: str) -> None:
        for row in await self._workers.members(pool.id):
            if row.lab_track != old_track:
                continue
            try:
                await self._workers.follow_pool_track(row.id, pool.id, pool.lab_track, by)
            except LcmError as exc:
                logger.warning("pool %s: worker %s still serves track %s: %s", pool.name, row.id, old_track,
                               exc.message)

    async def scale(self, pool_id: str, request: ScaleRequest, by: str) -> WorkerPool:
        return await self._change(pool_id, lambda p, now: p.scale(request.workers, now, by, request.reason))

    async def drain(self, pool_id: str, by: str) -> WorkerPool:
        return await self._change(pool_id, lambda p, now: p.drain(now, by))

    async def undrain(self, pool_id: str, by: str) -> WorkerPool:
        """Cancel the pool's drain. Its members still draining (held by sessions) are recalled first, so that
        the autoscaler, woken by the pool's change, counts them instead of launching workers in their place; and
        again once the pool is open: an evaluation made on the drained pool between the recall and the pool's
        change names the pool's version still (a recall does not change the pool) and may have retired them."""
        pool = await self._store.get(pool_id)
        pool.check_open("undrained")  # a pool being deleted keeps its members on their way out
        if not pool.draining:
            return pool
        await self._recall_retired(pool, by)
        undrained = await self._change(pool_id, lambda p, now: p.undrain(now, by))
        await self._recall_retired(undrained, by)
        return undrained

    async def _recall_retired(self, pool: WorkerPool, by: str) -> None:
        for row in await self._workers.members(pool.id):
            if row.status is WorkerStatus.DRAINING:
                try:
                    await self._workers.recall_member(row.id, pool.id, by)
                except LcmError as exc:
                    logger.warning("pool %s: worker %s stays drained: %s", pool.name, row.id, exc.message)

    async def delete(self, pool_id: str, by: str) -> WorkerPool:
        """Mark the pool for deletion (the autoscaler retires its workers, then reports it terminated); a pool
        without any worker, that never launched one, is terminated at once.

        Whether it has members is read after the pool, and the write names the pool's version of that read:
        a worker adopted meanwhile changes the pool (after the worker), so the write loses and the members are
        counted again."""
        for attempt in range(1, self._attempts + 1):
            read = await self._store.get(pool_id)
            has_members = read.launches > 0 or bool(await self._workers.members(read.id))

            def change(pool: WorkerPool, now: datetime, seen: int = read.version,
                       members: bool = has_members) -> list[DomainEvent]:
                if pool.version != seen:
                    raise VersionConflict(f"pool {pool.name!r} changed while its members were counted")
                return pool.delete(now, by, has_members=members)

            try:
                return await self._change(pool_id, change, attempts=1)
            except VersionConflict:
                if attempt == self._attempts:
                    raise
        raise AssertionError("unreachable: the last attempt raises")

    async def adopt(self, pool_id: str, worker_id: str, by: str) -> WorkerPool:
        """An existing worker joins the pool and serves its track (409 when it is in another pool or gone).

        The worker is written first, then the pool: a delete that counted no member before the worker joined
        loses its race against the pool's write (see `delete`); a pool closed meanwhile refuses, and the worker
        is put back as it was."""
        pool = await self._store.get(pool_id)
        pool.check_open("given workers")
        previous_track = (await self._workers.get(worker_id)).lab_track
        _, joined = await self._workers.join_pool(worker_id, pool.id, pool.lab_track, by)
        if not joined:
            return pool
        try:
            return await self._change(pool_id, lambda p, now: p.adopt(worker_id, now, by))
        except ConflictError:
            await self._workers.leave_pool(worker_id, pool.id, pool.lab_track, by, previous_track)
            raise

    async def release(self, pool_id: str, worker_id: str, by: str) -> WorkerPool:
        """The worker leaves the pool (it keeps its lab track unless it was the pool's). Idempotent."""
        pool = await self._store.get(pool_id)
        _, left = await self._workers.leave_pool(worker_id, pool.id, pool.lab_track, by)
        if not left:
            return pool
        return await self._change(pool_id, lambda p, now: p.release(worker_id, now, by))


__all__ = ["PoolService"]
