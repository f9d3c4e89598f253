"""Optimistic concurrency on MongoDB documents (docs/architecture.md): a write names the version it read."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


async def replace_at_version(collection: AsyncCollection[Any], doc_id: str, doc: dict[str, Any], expected: int,
                             field: str = "version") -> bool:
    """Store `doc` with `field = expected + 1` only if the stored one is still at `expected`; False when
    another writer came first (the caller re-reads and retries, or answers 409)."""
    doc[field] = expected + 1
    result = await collection.replace_one({"_id": doc_id, field: expected}, doc)
    return result.matched_count == 1
