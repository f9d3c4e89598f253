"""MongoDB persistence of each worker's latest telemetry (`WorkerTelemetry`), one document per worker, apart
from the versioned worker document.

Written every metrics cycle in one bulk write, without a version check: the newest report wins, and a report
collected before the one stored is dropped (a late batch never overwrites a newer cycle). Reading it never
loads the worker, and writing it never makes a worker write lose a race.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from lcm_core.domain.workers import WorkerTelemetry

#: What the worker list and the Prometheus scrape read of a worker's telemetry: its row's columns.
SUMMARY_FIELDS = ("worker_id", "collected_at", "utilisation", "stale", "idle", "cml.labs_count",
                  "cml.running_nodes")
_DUPLICATE_KEY = 11000


def _to_document(telemetry: WorkerTelemetry) -> dict[str, Any]:
    doc = telemetry.model_dump(mode="python", exclude_none=True)
    doc["_id"] = doc["worker_id"]
    return doc


def _from_document(doc: dict[str, Any]) -> WorkerTelemetry:
    nested: dict[str, Any] = {}
    for key, value in doc.items():
        # A projection on nested fields comes back nested from MongoDB and flat (`cml.labs_count`) from the
        # local stack's MongoDB-wire server: both read the same.
        *parents, leaf = key.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    nested.pop("_id", None)
    return WorkerTelemetry.model_validate(nested)


class TelemetryRepository:
    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self._c = collection

    async def get(self, worker_id: str) -> WorkerTelemetry | None:
        doc = await self._c.find_one({"_id": worker_id})
        return None if doc is None else _from_document(doc)

    async def get_many(self, worker_ids: Iterable[str], *, summary: bool = False) -> dict[str, WorkerTelemetry]:
        """The telemetry of these workers (those that have any); `summary`: only the row's columns."""
        ids = list(dict.fromkeys(worker_ids))
        if not ids:
            return {}
        projection = dict.fromkeys(SUMMARY_FIELDS, 1) if summary else None
        return {t.worker_id: t for t in [_from_document(d) async for d in self._c.find({"_id": {"$in": ids}},
                                                                                        projection)]}

    async def store_many(self, telemetry: Sequence[WorkerTelemetry]) -> set[str]:
        """Store each worker's telemetry unless a newer collection is already stored; return the ids stored."""
        if not telemetry:
            return set()
        # Replaced when the stored one was collected no later; inserted when there is none. A newer stored one
        # makes the upsert collide with it (a duplicate key): that report is dropped.
        ops = [ReplaceOne({"_id": item.worker_id, "collected_at": {"$lte": item.collected_at}}, _to_document(item),
                          upsert=True) for item in telemetry]
        try:
            await self._c.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # The upsert of a worker whose stored telemetry is newer collides with it: that report is older.
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            return {t.worker_id for t in telemetry} - {telemetry[e["index"]].worker_id for e in errors}
        return {t.worker_id for t in telemetry}

    async def delete(self, worker_ids: Iterable[str]) -> None:
        ids = list(worker_ids)
        if ids:
            await self._c.delete_many({"_id": {"$in": ids}})

