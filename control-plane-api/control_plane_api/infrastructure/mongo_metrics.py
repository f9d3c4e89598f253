"""MongoDB persistence of worker metric samples: appended in one round trip per report batch, read newest
first per worker, pruned by age (at most once a minute, by whichever CPA replica records)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from control_plane_api.domain.metric_history import MetricSample

_PRUNE_EVERY_SECONDS = 60.0


class MetricHistoryRepository:
    def __init__(self, collection: AsyncCollection, retention: timedelta) -> None:
        self._c = collection
        self.retention = retention
        self._last_prune = 0.0

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("worker_id", ASCENDING), ("at", DESCENDING)], name="worker_at")
        await self._c.create_index([("at", ASCENDING)], name="at")

    async def append(self, samples: Sequence[MetricSample], now: datetime) -> None:
        if samples:
            await self._c.insert_many([s.model_dump(mode="python") for s in samples], ordered=False)
        if time.monotonic() - self._last_prune >= _PRUNE_EVERY_SECONDS:
            self._last_prune = time.monotonic()
            await self.prune(now - self.retention)

    async def prune(self, before: datetime) -> int:
        result = await self._c.delete_many({"at": {"$lt": before}})
        return result.deleted_count

    async def recent(self, worker_id: str, since: datetime, limit: int) -> list[MetricSample]:
        """Samples of one worker at or after `since`, oldest first (at most `limit`, the newest ones)."""
        cursor = self._c.find({"worker_id": worker_id, "at": {"$gte": since}}, {"_id": 0})
        docs = await cursor.sort("at", DESCENDING).limit(limit).to_list(length=limit)
        return [MetricSample.model_validate(d) for d in reversed(docs)]
