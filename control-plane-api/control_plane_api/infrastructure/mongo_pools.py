"""MongoDB persistence of the WorkerPool aggregate (collection `worker_pools`), written through the shared
version-checked, leader-fenced path (`mongo_versions.VersionedCollection`).

A pool's name and its lab track are unique among the pools not terminated. Each document carries `live_name`
and `live_track`: the name and the track while the pool is not terminated, null once it is; both have a unique
index that only covers strings (`partialFilterExpression: {$type: "string"}`). On MongoDB the partial filter
leaves the terminated pools out; the local stack's MongoDB-wire server ignores partial filters but, like
SQLite, lets any number of nulls share a unique index: both stores enforce the same rule.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.pool import WorkerPool
from control_plane_api.infrastructure.mongo_versions import VersionedCollection, without_bookkeeping
from lcm_core.domain.pools import PoolPhase
from lcm_core.errors import ConflictError, NotFoundError, UnavailableError

LIVE_NAME = "live_name"
LIVE_TRACK = "live_track"
#: What the lists leave out: the histories, which only a pool's detail and its history show.
BRIEF_EXCLUDES = ("history", "state_history")


def to_document(pool: WorkerPool) -> dict[str, Any]:
    doc = pool.model_dump(mode="python", by_alias=True)
    doc["_id"] = doc.pop("id")
    # Allowed hours hold times of day, which BSON cannot store: the scaling section is kept as JSON.
    doc["scaling"] = pool.scaling.model_dump(mode="json")
    live = pool.phase is not PoolPhase.TERMINATED
    doc[LIVE_NAME] = pool.name if live else None
    doc[LIVE_TRACK] = pool.lab_track if live else None
    return doc


def from_document(doc: dict[str, Any]) -> WorkerPool:
    doc = without_bookkeeping(doc)
    doc.pop(LIVE_NAME, None)
    doc.pop(LIVE_TRACK, None)
    return WorkerPool.model_validate(doc)


class PoolRepository:
    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection
        self._store: VersionedCollection[WorkerPool] = VersionedCollection(
            collection, to_document, kind="pool", id_detail="pool_id",
            duplicate=lambda p: f"a pool named {p.name!r} or serving lab track {p.lab_track!r} already exists")

    @property
    def lost_races(self) -> int:
        """Writes that lost a version race since start (see `VersionedCollection.lost_races`)."""
        return self._store.lost_races

    async def ensure_indexes(self) -> None:
        for field, name in ((LIVE_NAME, "live_name_unique"), (LIVE_TRACK, "live_track_unique")):
            await self._c.create_index([(field, ASCENDING)], unique=True, name=name,
                                       partialFilterExpression={field: {"$type": "string"}})
        await self._c.create_index([("phase", ASCENDING)], name="phase")

    async def get(self, pool_id: str) -> WorkerPool:
        doc = await self._c.find_one({"_id": pool_id})
        if doc is None:
            raise NotFoundError(f"pool {pool_id} not found", pool_id=pool_id)
        return from_document(doc)

    async def page(self, include_terminated: bool, skip: int, limit: int) -> tuple[list[WorkerPool], int]:
        flt: dict[str, Any] = {} if include_terminated else {"phase": {"$ne": PoolPhase.TERMINATED.value}}
        cursor = self._c.find(flt, dict.fromkeys(BRIEF_EXCLUDES, 0)).sort([("name", ASCENDING), ("_id", ASCENDING)])
        docs = await cursor.skip(skip).limit(limit).to_list(length=limit)
        total = skip + len(docs) if docs and len(docs) < limit else await self._c.count_documents(flt)
        return [from_document(d) for d in docs], total

    async def live(self) -> list[WorkerPool]:
        flt = {"phase": {"$ne": PoolPhase.TERMINATED.value}}
        return [from_document(d) async for d in self._c.find(flt, dict.fromkeys(BRIEF_EXCLUDES, 0))
                .sort("name", ASCENDING)]

    async def live_for_track(self, lab_track: str) -> str | None:
        """The id of the pool not terminated that serves `lab_track` (its unique `live_track` index)."""
        try:
            holder = await self._c.find_one({LIVE_TRACK: lab_track}, {"_id": 1})
        except PyMongoError as exc:
            raise UnavailableError(f"pools unreachable: {type(exc).__name__}: {exc}") from exc
        return None if holder is None else str(holder["_id"])

    async def insert(self, pool: WorkerPool, leader: LeaderCaller | None = None) -> None:
        try:
            await self._store.insert(pool, leader)
        except ConflictError as exc:
            if not isinstance(exc.__cause__, DuplicateKeyError):
                raise
            raise await self._taken(pool, exc) from exc

    async def save(self, pool: WorkerPool, leader: LeaderCaller | None = None) -> None:
        """Write `pool` if nobody wrote since it was read (else `VersionConflict`) and no newer epoch of
        `leader`'s service did (else `FencedError`); a name or track another live pool holds is a
        `ConflictError` naming that pool."""
        try:
            await self._store.save(pool, leader)
        except ConflictError as exc:
            if not isinstance(exc.__cause__, DuplicateKeyError):
                raise
            raise await self._taken(pool, exc) from exc

    async def conflicting(self, pool_id: str, name: str, lab_track: str) -> str | None:
        """Why another pool that is not terminated holds `name` or `lab_track` (None when neither is taken)."""
        others = {"_id": {"$ne": pool_id}}
        holder = await self._c.find_one({LIVE_NAME: name, **others}, {"_id": 1})
        if holder is not None:
            return f"a pool named {name!r} already exists (pool {holder['_id']})"
        holder = await self._c.find_one({LIVE_TRACK: lab_track, **others}, {"_id": 1, "name": 1})
        if holder is not None:
            return (f"lab track {lab_track!r} already has a pool, {holder['name']!r} (pool {holder['_id']}): one "
                    "pool per track")
        return None

    async def _taken(self, pool: WorkerPool, error: ConflictError) -> ConflictError:
        """Which pool holds the name or the track a write was refused for."""
        why = await self.conflicting(pool.id, pool.name, pool.lab_track)
        return error if why is None else ConflictError(why, pool_id=pool.id)
