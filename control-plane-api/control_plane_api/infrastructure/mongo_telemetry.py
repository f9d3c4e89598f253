"""MongoDB persistence of each worker's latest telemetry (`WorkerTelemetry`), one document per worker, apart
from the versioned worker document.

Written every metrics cycle in one bulk write, under a version of its own: two reports of one worker written
at once (a refresh during the fleet's cycle) both land, the loser re-read and re-applied by the use case.
Reading it never loads the worker, and writing it never makes a worker write lose a race.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from control_plane_api.infrastructure.mongo_versions import BATCH_MARKER, batch_winners
from lcm_core.domain.workers import WorkerTelemetry

#: What the worker list and the Prometheus scrape read of a worker's telemetry: its row's columns.
SUMMARY_FIELDS = ("worker_id", "version", "collected_at", "utilisation", "stale", "idle", "cml.labs_count",
                  "cml.running_nodes")
_DUPLICATE_KEY = 11000
_MARK = BATCH_MARKER
"""Which write of a batch stored the document: one read tells the winners, without trusting counts."""


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
    nested.pop(_MARK, None)
    return WorkerTelemetry.model_validate(nested)


class TelemetryRepository:
    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self._c = collection
        self.lost_races = 0
        """Telemetry writes that lost a version race since start (another report of the worker came first)."""

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
        """Store each worker's telemetry if nobody stored it since it was read (version 0: never stored);
        return the ids that lost that race (left at their old version). One round trip, two when some lost."""
        if not telemetry:
            return set()
        marks = {item.worker_id: uuid.uuid4().hex for item in telemetry}
        ops: list[InsertOne[Any] | ReplaceOne[Any]] = []
        for item in telemetry:
            doc = _to_document(item)
            doc["version"], doc[_MARK] = item.version + 1, marks[item.worker_id]
            ops.append(InsertOne(doc) if item.version == 0
                       else ReplaceOne({"_id": item.worker_id, "version": item.version}, doc))
        try:
            result = await self._c.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            # Inserted meanwhile by another writer (a duplicate key): that one lost, like a replaced version.
            if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            won = await batch_winners(self._c, marks)
        else:
            done = result.inserted_count + result.matched_count
            won = set(marks) if done == len(ops) else await batch_winners(self._c, marks)
        for item in telemetry:
            if item.worker_id in won:
                item.version += 1
        self.lost_races += len(marks) - len(won)
        return set(marks) - won

    async def delete(self, worker_ids: Iterable[str]) -> None:
        ids = list(worker_ids)
        if ids:
            await self._c.delete_many({"_id": {"$in": ids}})

