"""In-memory fakes of the pools' ports (`ports.PoolStore`, `ports.LeadTimeSamples`, `ports.TemplateSource`), for
use-case tests without any server; the stores behave as `fakes.InMemoryStore` does."""

from __future__ import annotations

from typing import Any

from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.lead_times import SAMPLES_KEPT, LeadKind, LeadSample
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.domain.system_settings import WorkerTemplate
from lcm_core.domain.pools import PoolPhase
from lcm_core.errors import ConflictError, NotFoundError
from tests.control_plane_api.application.fakes import InMemoryStore


class InMemoryPools(InMemoryStore[WorkerPool]):
    """The worker pools (`ports.PoolStore`): a name and a track are unique among the pools not terminated."""

    def __init__(self) -> None:
        super().__init__("pool")

    async def conflicting(self, pool_id: str, name: str, lab_track: str) -> str | None:
        live = [p for p in self.items.values() if p.id != pool_id and p.phase is not PoolPhase.TERMINATED]
        for other in live:
            if other.name == name:
                return f"a pool named {name!r} already exists (pool {other.id})"
        for other in live:
            if other.lab_track == lab_track:
                return f"lab track {lab_track!r} already has a pool, {other.name!r}"
        return None

    def _refuse_duplicate(self, pool: WorkerPool) -> None:
        """What the store's unique indexes refuse."""
        if pool.phase is PoolPhase.TERMINATED:
            return
        for other in self.items.values():
            if other.id != pool.id and other.phase is not PoolPhase.TERMINATED and (
                    other.name == pool.name or other.lab_track == pool.lab_track):
                raise ConflictError(f"a pool named {pool.name!r} or serving lab track {pool.lab_track!r} already "
                                    "exists")

    async def insert(self, item: Any, leader: LeaderCaller | None = None) -> None:
        self._refuse_duplicate(item)
        await super().insert(item, leader)

    async def save(self, item: Any, leader: LeaderCaller | None = None) -> None:
        stored = self.items.get(item.id)
        if stored is not None and stored.version == item.version:
            self._refuse_duplicate(item)
        await super().save(item, leader)

    async def page(self, include_terminated: bool, skip: int, limit: int) -> tuple[list[WorkerPool], int]:
        found = sorted((p for p in self.items.values() if include_terminated or p.phase is not PoolPhase.TERMINATED),
                       key=lambda p: (p.name, p.id))
        return [p.model_copy(deep=True) for p in found[skip:skip + limit]], len(found)

    async def live(self) -> list[WorkerPool]:
        return (await self.page(False, 0, 1_000_000))[0]

    async def live_for_track(self, lab_track: str) -> str | None:
        return next((p.id for p in self.items.values() if p.lab_track == lab_track
                     and p.phase is not PoolPhase.TERMINATED), None)


class InMemoryLeadTimes:
    """Measured lead times (`ports.LeadTimeSamples`): one per clock, the newest `SAMPLES_KEPT` per template and
    kind."""

    def __init__(self) -> None:
        self.samples: list[LeadSample] = []

    async def record(self, sample: LeadSample) -> bool:
        if any(s.key == sample.key for s in self.samples):
            return False
        self.samples.append(sample)
        same = [s for s in self.samples if (s.template_name, s.kind) == (sample.template_name, sample.kind)]
        for old in same[:-SAMPLES_KEPT]:
            self.samples.remove(old)
        return True

    async def recent(self, template_name: str, kind: LeadKind, limit: int) -> list[float]:
        return [s.seconds for s in self.samples if (s.template_name, s.kind) == (template_name, kind)][-limit:]


class InMemoryTemplates:
    """Worker templates by name (`ports.TemplateSource`)."""

    def __init__(self, *templates: WorkerTemplate) -> None:
        self.items = {t.name: t for t in templates}

    async def get(self, name: str) -> WorkerTemplate:
        if name not in self.items:
            raise NotFoundError(f"template {name!r} not found")
        return self.items[name].model_copy(deep=True)
