"""Optimistic concurrency on MongoDB documents (ARCHITECTURE §4): the one write path of every versioned
aggregate (workers, lablet definitions, lablet sessions).

A save names the version it read: `replace_one({_id, <field>: read}, doc)` with `<field> = read + 1`. No match
means somebody else wrote first, a `VersionConflict` (409) that the use case answers by re-reading and
re-applying (`application.versioned.mutate`). A batch goes out as one unordered `bulk_write`; each replacement
carries a fresh `write_token` so that one `find` tells exactly which of the batch's writes won, without
trusting counts. Writes are whole-document replaces and inserts: the forms the local stack's MongoDB-wire
server stores faithfully (see docs/architecture.md, Persistence).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from lcm_core.errors import ConflictError, VersionConflict

BATCH_MARKER = "write_token"
"""Bookkeeping of the batch path, stored beside the aggregate's fields: readers drop it (`without_bookkeeping`)."""
DUPLICATE_KEY = 11000


class Identified(Protocol):
    id: str


A = TypeVar("A", bound=Identified)


def without_bookkeeping(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the aggregate's fields: `_id` renamed `id`, the write path's own fields dropped."""
    doc = dict(doc)
    doc["id"] = doc.pop("_id")
    doc.pop(BATCH_MARKER, None)
    return doc


class VersionedCollection(Generic[A]):
    """Inserts and version-checked saves of one aggregate type in one collection.

    `to_document` gives the aggregate as stored (with `_id`); `field` names its optimistic version (`version`,
    or `revision` for lablet definitions, whose `version` is their content version); `kind` and `id_detail`
    make the errors say what lost (`worker 42 changed since version 3`). Every method leaves the aggregate
    at the version it now has in the store (the number it wrote, or unchanged when it lost)."""

    def __init__(self, collection: AsyncCollection[Any], to_document: Callable[[A], dict[str, Any]], *,
                 kind: str, id_detail: str, field: str = "version",
                 duplicate: Callable[[A], str] | None = None) -> None:
        self.collection = collection
        self._to_document = to_document
        self._kind = kind
        self._id_detail = id_detail
        self._field = field
        self._duplicate = duplicate or (lambda item: f"{kind} {item.id} already exists")

    def _version(self, item: A) -> int:
        return int(getattr(item, self._field))

    def _set_version(self, item: A, version: int) -> None:
        setattr(item, self._field, version)

    def _document(self, item: A, version: int) -> dict[str, Any]:
        doc = self._to_document(item)
        doc[self._field] = version
        return doc

    async def insert(self, item: A) -> None:
        """Store a new aggregate at version 1; `ConflictError` when its id (or a unique key) is taken."""
        try:
            await self.collection.insert_one(self._document(item, 1))
        except DuplicateKeyError as exc:
            raise ConflictError(self._duplicate(item), **{self._id_detail: item.id}) from exc
        self._set_version(item, 1)

    async def insert_many(self, items: Sequence[A]) -> set[str]:
        """New aggregates in one round trip; returns the ids inserted (a duplicate is skipped, not raised)."""
        if not items:
            return set()
        docs = [self._document(item, 1) for item in items]
        try:
            await self.collection.insert_many(docs, ordered=False)
            inserted = {item.id for item in items}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            inserted = {item.id for item in items} - {docs[e["index"]]["_id"] for e in errors}
        for item in items:
            if item.id in inserted:
                self._set_version(item, 1)
        return inserted

    async def save(self, item: A) -> None:
        """Write `item` if nobody wrote since it was read (`VersionConflict` otherwise); bump its version."""
        expected = self._version(item)
        result = await self.collection.replace_one({"_id": item.id, self._field: expected},
                                                   self._document(item, expected + 1))
        if result.matched_count != 1:
            raise VersionConflict(f"{self._kind} {item.id} changed since {self._field} {expected}; re-read and "
                                  "retry", **{self._id_detail: item.id})
        self._set_version(item, expected + 1)

    async def save_many(self, items: Sequence[A]) -> set[str]:
        """Write a batch in one round trip; returns the ids that lost a race (left at their old version)."""
        if not items:
            return set()
        tokens: dict[str, str] = {}
        ops = []
        for item in items:
            doc = self._document(item, self._version(item) + 1)
            doc[BATCH_MARKER] = tokens[item.id] = uuid.uuid4().hex
            ops.append(ReplaceOne({"_id": item.id, self._field: self._version(item)}, doc))
        try:
            result = await self.collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
        else:
            if result.matched_count == len(ops):
                # Each filter names one document (id + version): all matched means every write won, and the
                # usual case needs no second round trip to find out which.
                for item in items:
                    self._set_version(item, self._version(item) + 1)
                return set()
        won = {d["_id"] async for d in self.collection.find(
            {"_id": {"$in": list(tokens)}, BATCH_MARKER: {"$in": list(tokens.values())}}, {"_id": 1})}
        for item in items:
            if item.id in won:
                self._set_version(item, self._version(item) + 1)
        return set(tokens) - won
