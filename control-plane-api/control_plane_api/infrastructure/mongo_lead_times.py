"""MongoDB persistence of measured lead times (collection `lead_time_samples`): one document per sample, keyed
by the clock it measured (a clock measured twice is kept once), and only the newest `SAMPLES_KEPT` of each
template and kind are kept: each record trims the older ones of its own template and kind."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from control_plane_api.domain.lead_times import SAMPLES_KEPT, LeadKind, LeadSample
from lcm_core.errors import UnavailableError


class LeadTimeRepository:
    def __init__(self, collection: AsyncCollection, kept: int = SAMPLES_KEPT) -> None:
        self._c = collection
        self._kept = kept

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("template_name", ASCENDING), ("kind", ASCENDING), ("serving_at", DESCENDING)],
                                   name="template_kind_serving_at")

    async def record(self, sample: LeadSample) -> bool:
        of = {"template_name": sample.template_name, "kind": sample.kind.value}
        try:
            try:
                await self._c.insert_one({"_id": sample.key, **sample.model_dump(mode="python")})
            except DuplicateKeyError:
                return False
            older = self._c.find(of, {"_id": 1}).sort([("serving_at", DESCENDING), ("_id", DESCENDING)])
            beyond = [d["_id"] async for d in older.skip(self._kept)]
            if beyond:
                await self._c.delete_many({"_id": {"$in": beyond}})
        except PyMongoError as exc:
            raise UnavailableError(f"lead time samples unreachable: {type(exc).__name__}: {exc}") from exc
        return True

    async def recent(self, template_name: str, kind: LeadKind, limit: int) -> list[float]:
        cursor = self._c.find({"template_name": template_name, "kind": kind.value}, {"seconds": 1})
        docs = await cursor.sort([("serving_at", DESCENDING), ("_id", DESCENDING)]).limit(limit).to_list(length=limit)
        return [float(d["seconds"]) for d in reversed(docs)]


__all__ = ["LeadTimeRepository"]
