"""Worker reads that load no worker, against the MongoDB-wire server."""

from __future__ import annotations

import uuid

from pymongo import AsyncMongoClient

from control_plane_api.infrastructure.mongo_workers import WorkerRepository


async def test_workers_are_counted_by_status_and_health_without_loading_them(mongo_server) -> None:
    client: AsyncMongoClient = AsyncMongoClient(f"mongodb://{mongo_server.address}", tz_aware=True)
    try:
        collection = client[f"workers_{uuid.uuid4().hex[:8]}"]["workers"]
        await collection.insert_many([{"_id": f"w{n}", "status": "running" if n % 2 else "stopped",
                                       "health_status": "healthy" if n % 3 else "unknown"} for n in range(10)])
        counts = await WorkerRepository(collection).count_by_status_and_health()
    finally:
        await client.close()
    assert counts == {("running", "healthy"): 3, ("running", "unknown"): 2, ("stopped", "healthy"): 3,
                      ("stopped", "unknown"): 2}
