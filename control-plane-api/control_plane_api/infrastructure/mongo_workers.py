"""MongoDB persistence of the Worker aggregate with optimistic concurrency on `version`.

Inserts and saves go through the shared write path (`mongo_versions.VersionedCollection`): a save filters
on the version the caller read and writes `version + 1`; no match is a `VersionConflict` so that the caller
re-reads and re-applies. Batched saves go out as one `bulk_write` with a `write_token` per document.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_query import SORTABLE, WorkerQuery
from control_plane_api.infrastructure.mongo_versions import VersionedCollection
from lcm_core.errors import NotFoundError

#: What a brief read leaves out: the bounded histories, which only a worker's detail shows.
BRIEF_EXCLUDES = ("state_history", "alerts")


def to_document(worker: Worker) -> dict[str, Any]:
    doc = worker.model_dump(mode="python", by_alias=True)
    doc["_id"] = doc.pop("id")
    return doc


#: Fields a worker document written before the telemetry moved to its own collection still holds: what they
#: said is the telemetry's now (written anew by the next metrics report), or was never used.
LEGACY_FIELDS = ("telemetry", "health_reasons", "last_seen_at", "last_health_check_at")
LEGACY_SUBFIELDS = {
    "license": ("nodes_in_use",),
    "activity": ("last_activity_at", "idle_since", "eligible_for_auto_pause", "idle_verdict", "idle_checked_at"),
    "capacity": ("hosted_lab_ids",),
}


def upgrade_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored worker in the current shape: a document of the earlier one (telemetry inside the worker) loses
    the fields that moved out, and keeps the EC2 state it recorded. The next write stores it upgraded."""
    doc = dict(doc)
    old_telemetry = doc.get("telemetry")
    if doc.get("ec2_state") is None and isinstance(old_telemetry, dict):
        doc["ec2_state"] = (old_telemetry.get("ec2") or {}).get("state")
    for name in LEGACY_FIELDS:
        doc.pop(name, None)
    for group, names in LEGACY_SUBFIELDS.items():
        if isinstance(doc.get(group), dict):
            doc[group] = {k: v for k, v in doc[group].items() if k not in names}
    return doc


def from_document(doc: dict[str, Any]) -> Worker:
    doc = upgrade_document(doc)
    doc["id"] = doc.pop("_id")
    doc.pop("write_token", None)
    return Worker.model_validate(doc)


def query_filter(query: WorkerQuery) -> dict[str, Any]:
    """A worker list's filters as a MongoDB filter."""
    clauses: list[dict[str, Any]] = []
    if query.status:
        clauses.append({"status": {"$in": list(query.status)}})
    elif not query.include_terminated:
        clauses.append({"status": {"$ne": "terminated"}})
    if query.aws_region:
        clauses.append({"aws_region": {"$in": list(query.aws_region)}})
    if query.health_status:
        clauses.append({"health_status": {"$in": list(query.health_status)}})
    if query.ids:
        clauses.append({"_id": {"$in": list(query.ids)}})
    if query.pool_id is not None:
        clauses.append({"pool_id": query.pool_id})
    if query.search:
        # Case-insensitive substring match on the fields operators search by, safely escaped.
        pattern = {"$regex": _escape(query.search), "$options": "i"}
        clauses.append({"$or": [{"name": pattern}, {"aws_instance_id": pattern}, {"_id": pattern},
                                {"public_ip": pattern}, {"private_ip": pattern}]})
    return {"$and": clauses} if clauses else {}


def _escape(text: str) -> str:
    return "".join("\\" + c if c in r"\.^$*+?{}[]|()" else c for c in text)


class WorkerRepository:
    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection
        self._store: VersionedCollection[Worker] = VersionedCollection(
            collection, to_document, kind="worker", id_detail="worker_id",
            duplicate=lambda w: f"a worker for instance {w.aws_instance_id} already exists")

    @property
    def lost_races(self) -> int:
        """Writes that lost a version race since start (see `VersionedCollection.lost_races`)."""
        return self._store.lost_races

    async def ensure_indexes(self) -> None:
        # Partial: workers created from a template have no instance yet (null), and there may be many.
        existing = {index["name"] async for index in await self._c.list_indexes()}
        if "aws_instance_id_unique" in existing:
            await self._c.drop_index("aws_instance_id_unique")  # the first, non-partial version
        await self._c.create_index([("aws_instance_id", ASCENDING)], unique=True, name="aws_instance_id_unique_set",
                                   partialFilterExpression={"aws_instance_id": {"$type": "string"}})
        await self._c.create_index([("status", ASCENDING)], name="status")
        await self._c.create_index([("aws_region", ASCENDING)], name="aws_region")
        await self._c.create_index([("health_status", ASCENDING)], name="health_status")
        await self._c.create_index([("pool_id", ASCENDING)], name="pool_id")
        await self._c.create_index([("license.expires", ASCENDING)], name="license_expires")

    async def get(self, worker_id: str) -> Worker:
        doc = await self._c.find_one({"_id": worker_id})
        if doc is None:
            raise NotFoundError(f"worker {worker_id} not found", worker_id=worker_id)
        return from_document(doc)

    async def get_many(self, worker_ids: Iterable[str]) -> dict[str, Worker]:
        ids = list(dict.fromkeys(worker_ids))
        found = [from_document(d) async for d in self._c.find({"_id": {"$in": ids}})]
        return {w.id: w for w in found}

    async def by_instance_ids(self, instance_ids: Iterable[str]) -> dict[str, Worker]:
        ids = list(dict.fromkeys(instance_ids))
        found = [from_document(d) async for d in self._c.find({"aws_instance_id": {"$in": ids}})]
        return {w.aws_instance_id: w for w in found if w.aws_instance_id is not None}

    async def unseen(self, instance_ids: Iterable[str]) -> list[Worker]:
        """Workers with an instance, not terminated, whose instance is not among `instance_ids`: what a discovery
        that saw exactly those instances did not see (normally none, so this reads almost nothing)."""
        flt = {"status": {"$ne": "terminated"}, "aws_instance_id": {"$nin": [None, *dict.fromkeys(instance_ids)]}}
        projection = dict.fromkeys(BRIEF_EXCLUDES, 0)
        return [from_document(d) async for d in self._c.find(flt, projection).sort("name", ASCENDING)]

    async def page(self, query: WorkerQuery, *, skip: int = 0, limit: int = 100, sort: str = "name",
                   descending: bool = False, brief: bool = False) -> tuple[list[Worker], int]:
        """A page of workers; `brief` leaves out the histories (state changes, alerts), which then read as
        empty: what the lists and the controllers need."""
        if sort not in SORTABLE:
            sort = "name"
        flt = query_filter(query)
        projection = dict.fromkeys(BRIEF_EXCLUDES, 0) if brief else None
        cursor = self._c.find(flt, projection).sort([(sort, DESCENDING if descending else ASCENDING),
                                                     ("_id", ASCENDING)])
        docs = await cursor.skip(skip).limit(limit).to_list(length=limit)
        # A page that is not full is the last one, so it tells the total: the count (a second query over the
        # whole collection) is only needed when more may follow or the offset was past the end.
        total = skip + len(docs) if docs and len(docs) < limit else await self._c.count_documents(flt)
        return [from_document(d) for d in docs], total

    async def all(self, query: WorkerQuery | None = None, *, brief: bool = False) -> list[Worker]:
        projection = dict.fromkeys(BRIEF_EXCLUDES, 0) if brief else None
        return [from_document(d) async for d in self._c.find(query_filter(query or WorkerQuery()), projection)
                .sort("name", ASCENDING)]

    async def count_by_status_and_health(self) -> dict[tuple[str, str], int]:
        """How many workers are in each (status, health) pair: counted by MongoDB, no worker is loaded."""
        # One key per pair (both are enum values, never containing "|"): the local stack's MongoDB-wire server
        # does not group on a compound `_id`.
        cursor = await self._c.aggregate([
            {"$project": {"pair": {"$concat": ["$status", "|", "$health_status"]}}},
            {"$group": {"_id": "$pair", "count": {"$sum": 1}}}])
        counts: dict[tuple[str, str], int] = {}
        async for found in cursor:
            status, _, health = str(found["_id"]).partition("|")
            counts[(status, health)] = int(found["count"])
        return counts

    async def count_by_status_and_license(self) -> dict[tuple[str, str], int]:
        """How many workers are in each (status, licence status) pair: counted by MongoDB, like the above."""
        cursor = await self._c.aggregate([
            {"$project": {"pair": {"$concat": ["$status", "|", "$license.status"]}}},
            {"$group": {"_id": "$pair", "count": {"$sum": 1}}}])
        counts: dict[tuple[str, str], int] = {}
        async for found in cursor:
            status, _, licence = str(found["_id"]).partition("|")
            counts[(status, licence)] = int(found["count"])
        return counts

    async def count_by_authorization(self, statuses: Sequence[str]) -> dict[str | None, int]:
        """Workers in `statuses` by their licence's authorization status as CML reported it (None: never)."""
        cursor = await self._c.aggregate([
            {"$match": {"status": {"$in": list(statuses)}}},
            {"$group": {"_id": "$license.authorization_status", "count": {"$sum": 1}}}])
        return {found["_id"]: int(found["count"]) async for found in cursor}

    async def soonest_license_expiry(self, statuses: Sequence[str]) -> datetime | None:
        """The earliest licence expiry among workers in `statuses` (walked in `license_expires` order)."""
        flt = {"license.expires": {"$ne": None}, "status": {"$in": list(statuses)}}
        # The whole (small) licence is projected: the local stack's MongoDB-wire server does not project a
        # dotted path.
        cursor = self._c.find(flt, {"license": 1}).sort("license.expires", ASCENDING).limit(1)
        async for found in cursor:
            expires = found["license"]["expires"]
            return expires if isinstance(expires, datetime) else None
        return None

    async def with_reservations(self) -> list[Worker]:
        """Workers holding at least one lablet-session reservation."""
        flt = {"capacity.session_ids": {"$elemMatch": {"$exists": True}}}
        return [from_document(d) async for d in self._c.find(flt, dict.fromkeys(BRIEF_EXCLUDES, 0))]

    async def insert(self, worker: Worker, leader: LeaderCaller | None = None) -> None:
        await self._store.insert(worker, leader)

    async def insert_many(self, workers: Sequence[Worker], leader: LeaderCaller | None = None) -> set[str]:
        """Insert new workers in one round trip; return the ids inserted (a duplicate instance is skipped)."""
        return await self._store.insert_many(workers, leader)

    async def save(self, worker: Worker, leader: LeaderCaller | None = None) -> None:
        """Write `worker` if nobody wrote since it was read (else `VersionConflict`) and no newer epoch of
        `leader`'s service did (else `FencedError`); bump its version."""
        await self._store.save(worker, leader)

    async def save_many(self, workers: Sequence[Worker], leader: LeaderCaller | None = None) -> set[str]:
        """Write a batch in one round trip; return the ids that lost a race (left at their old version)."""
        return await self._store.save_many(workers, leader)
