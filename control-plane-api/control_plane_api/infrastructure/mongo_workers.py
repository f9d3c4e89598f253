"""MongoDB persistence of the Worker aggregate with optimistic concurrency on `version`.

A save filters on the version the caller read and writes `version + 1`; no match means somebody else
wrote first, reported as `ConflictError` (HTTP 409) so that the caller re-reads and re-applies. Batched
saves go out as one `bulk_write`; each document carries a fresh `write_token` so the repository can tell
exactly which of the batch's writes won without trusting counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from control_plane_api.domain.worker import Worker
from control_plane_api.domain.worker_query import SORTABLE, WorkerQuery
from control_plane_api.infrastructure.mongo_versions import replace_at_version
from lcm_core.errors import ConflictError, NotFoundError, StaleVersionError

#: What a brief read leaves out: the bounded histories, which only a worker's detail shows.
BRIEF_EXCLUDES = ("state_history", "alerts")


def to_document(worker: Worker) -> dict[str, Any]:
    doc = worker.model_dump(mode="python", by_alias=True)
    doc["_id"] = doc.pop("id")
    return doc


def from_document(doc: dict[str, Any]) -> Worker:
    doc = dict(doc)
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

    async def with_reservations(self) -> list[Worker]:
        """Workers holding at least one lablet-session reservation."""
        flt = {"capacity.session_ids": {"$elemMatch": {"$exists": True}}}
        return [from_document(d) async for d in self._c.find(flt, dict.fromkeys(BRIEF_EXCLUDES, 0))]

    async def insert(self, worker: Worker) -> None:
        doc = to_document(worker)
        doc["version"] = worker.version = 1
        try:
            await self._c.insert_one(doc)
        except DuplicateKeyError as exc:
            raise ConflictError(f"a worker for instance {worker.aws_instance_id} already exists") from exc

    async def insert_many(self, workers: Sequence[Worker]) -> set[str]:
        """Insert new workers in one round trip; return the ids inserted (a duplicate instance is skipped)."""
        if not workers:
            return set()
        docs = []
        for worker in workers:
            worker.version = 1
            docs.append(to_document(worker))
        try:
            await self._c.insert_many(docs, ordered=False)
            return {w.id for w in workers}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            failed = {docs[e["index"]]["_id"] for e in errors}
            return {w.id for w in workers} - failed

    async def save(self, worker: Worker) -> None:
        """Write `worker` if nobody wrote since it was read; bump its version. A lost race is a
        `StaleVersionError` (re-read and retry); an instance another worker already has, a `ConflictError`
        (retrying cannot help)."""
        expected = worker.version
        try:
            saved = await replace_at_version(self._c, worker.id, to_document(worker), expected)
        except DuplicateKeyError as exc:
            raise ConflictError(f"instance {worker.aws_instance_id} belongs to another worker",
                                worker_id=worker.id, aws_instance_id=worker.aws_instance_id) from exc
        if not saved:
            raise StaleVersionError(f"worker {worker.id} changed since version {expected}; re-read and retry",
                                    worker_id=worker.id)
        worker.version = expected + 1

    async def save_many(self, workers: Sequence[Worker]) -> set[str]:
        """Write a batch in one round trip; return the ids that lost a race (left at their old version)."""
        if not workers:
            return set()
        tokens: dict[str, str] = {}
        ops = []
        for worker in workers:
            doc = to_document(worker)
            doc["version"] = worker.version + 1
            doc["write_token"] = tokens[worker.id] = uuid.uuid4().hex
            ops.append(ReplaceOne({"_id": worker.id, "version": worker.version}, doc))
        try:
            result = await self._c.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        else:
            if result.matched_count == len(ops):
                # Each filter names one document (id + version): all matched means every write won, and the
                # usual case needs no second round trip to find out which.
                for worker in workers:
                    worker.version += 1
                return set()
        won = {d["_id"] async for d in self._c.find(
            {"_id": {"$in": list(tokens)}, "write_token": {"$in": list(tokens.values())}}, {"_id": 1})}
        for worker in workers:
            if worker.id in won:
                worker.version += 1
        return set(tokens) - won
