"""MongoDB persistence of the cost ledger (docs/costs.md): `cost_intervals` (a worker's billed intervals),
`cost_holdings` (sessions placed on workers) and `cost_totals` (the settled totals by pool label).

Every interval document carries `until`: its end, or a date far ahead while it is open, so that one range
index (`until`, `start`) answers "what overlaps this window" for open and closed intervals alike. Closing and
settling replace the whole document under a filter on what the writer read (`end: null`, `settled: false`):
of two replicas recording the same change, one wins. (Whole-document replaces, not `$set`: the local stack's
MongoDB-wire server stores `$set` datetimes as strings.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from control_plane_api.domain.cost_ledger import HoldingInterval, WorkerInterval
from control_plane_api.domain.cost_report import Amounts

_AMOUNTS = ("running_usd", "stopped_usd", "savings_idle_pause_usd", "savings_scale_down_usd")


Record = TypeVar("Record", WorkerInterval, HoldingInterval)


def _document(record: WorkerInterval | HoldingInterval) -> dict[str, Any]:
    """A record as stored: its id as `_id`, and `until` (its end, or far ahead while open) for the range index."""
    doc = record.model_dump(mode="python")
    doc["_id"] = doc.pop("id")
    doc["until"] = record.until
    return doc


def _record(model: type[Record], doc: dict[str, Any]) -> Record:
    doc = dict(doc)
    doc["id"] = doc.pop("_id")
    doc.pop("until", None)
    return model.model_validate(doc)


class IntervalRepository:
    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("until", ASCENDING), ("start", ASCENDING)], name="until_start")
        await self._c.create_index([("worker_id", ASCENDING), ("end", ASCENDING)], name="worker_end")
        await self._c.create_index([("settled", ASCENDING)], name="settled")

    async def open_for(self, worker_id: str) -> WorkerInterval | None:
        docs = await self._c.find({"worker_id": worker_id, "end": None}).sort("start", ASCENDING).to_list(10)
        return _record(WorkerInterval, docs[-1]) if docs else None

    async def insert(self, interval: WorkerInterval) -> bool:
        try:
            await self._c.insert_one(_document(interval))
            return True
        except DuplicateKeyError:
            return False

    async def close(self, interval: WorkerInterval) -> bool:
        result = await self._c.replace_one({"_id": interval.id, "end": None}, _document(interval))
        return result.matched_count == 1

    async def advance(self, interval_id: str, worker_version: int) -> None:
        await self._c.update_one({"_id": interval_id, "end": None, "worker_version": {"$lt": worker_version}},
                                 {"$set": {"worker_version": worker_version}})

    async def overlapping(self, start: datetime, end: datetime, pool_id: str | None, worker_id: str | None,
                          limit: int) -> list[WorkerInterval]:
        flt: dict[str, Any] = {"until": {"$gte": start}, "start": {"$lt": end}}
        if pool_id is not None:
            flt["pool_id"] = pool_id
        if worker_id is not None:
            flt["worker_id"] = worker_id
        docs = await self._c.find(flt).sort("start", ASCENDING).limit(limit).to_list(length=limit)
        return [_record(WorkerInterval, d) for d in docs]

    async def unsettled(self, limit: int) -> list[WorkerInterval]:
        docs = await self._c.find({"settled": False}).limit(limit).to_list(length=limit)
        return [_record(WorkerInterval, d) for d in docs]

    async def settle(self, interval: WorkerInterval) -> bool:
        settled = interval.model_copy(update={"settled": True})
        result = await self._c.replace_one({"_id": interval.id, "settled": False}, _document(settled))
        return result.matched_count == 1


class HoldingRepository:
    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("until", ASCENDING), ("start", ASCENDING)], name="until_start")
        await self._c.create_index([("session_id", ASCENDING), ("end", ASCENDING)], name="session_end")

    async def insert(self, holding: HoldingInterval) -> None:
        try:
            await self._c.insert_one(_document(holding))
        except DuplicateKeyError:
            return  # the same placement recorded by another replica

    async def close(self, session_id: str, at: datetime) -> None:
        for doc in await self._c.find({"session_id": session_id, "end": None}).to_list(10):
            holding = _record(HoldingInterval, doc)
            closed = holding.model_copy(update={"end": max(at, holding.start)})
            await self._c.replace_one({"_id": holding.id, "end": None}, _document(closed))

    async def overlapping(self, start: datetime, end: datetime, worker_ids: Sequence[str],
                          limit: int) -> list[HoldingInterval]:
        flt = {"until": {"$gte": start}, "start": {"$lt": end}, "worker_id": {"$in": list(worker_ids)}}
        docs = await self._c.find(flt).sort("start", ASCENDING).limit(limit).to_list(length=limit)
        return [_record(HoldingInterval, d) for d in docs]


class TotalsRepository:
    """One document per pool label; `$inc` adds a settled interval's amounts atomically."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection

    async def add(self, label: str, amounts: Amounts) -> None:
        change = {"$inc": {name: float(getattr(amounts, name)) for name in _AMOUNTS}}
        try:
            await self._c.update_one({"_id": label}, change, upsert=True)
        except DuplicateKeyError:  # two first additions raced to insert it: the second one updates
            await self._c.update_one({"_id": label}, change, upsert=True)

    async def all(self) -> dict[str, Amounts]:
        return {str(d["_id"]): Amounts(*(float(d.get(name, 0.0)) for name in _AMOUNTS))
                async for d in self._c.find({})}
