"""Optimistic concurrency on MongoDB documents (docs/architecture.md): the one write path of every versioned
aggregate (workers, lablet definitions, lablet sessions).

A save names the version it read: `replace_one({_id, <field>: read}, doc)` with `<field> = read + 1`. No match
means somebody else wrote first, a `VersionConflict` (409) that the use case answers by re-reading and
re-applying (`application.versioned.mutate`). A batch goes out as one unordered `bulk_write`; each replacement
carries a fresh `write_token` so that one `find` tells exactly which of the batch's writes won, without
trusting counts. Writes are whole-document replaces and inserts: the forms the local stack's MongoDB-wire
server stores faithfully (see docs/architecture.md, Persistence).

A write of a controller leader (`LeaderCaller`) is also fenced: the document keeps, per service, the highest
epoch that wrote it (`fence: {"worker-controller": 812}`), the write's filter requires that the leader's
service has no higher one there, and the write records the leader's. So once a new leader has written a
document, its deposed predecessor cannot, even when the etcd check of its epoch raced with the election: a
`FencedError`, never retried. Operators' writes carry no epoch: they neither check nor change the tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pymongo import ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from control_plane_api.domain.fencing import LeaderCaller
from lcm_core.errors import ConflictError, FencedError, VersionConflict

BATCH_MARKER = "write_token"
"""Bookkeeping of the batch path, stored beside the aggregate's fields: readers drop it (`without_bookkeeping`)."""
FENCE = "fence"
"""Where a document keeps its fencing tokens (the aggregate's `fence` field, excluded from its dumps)."""
DUPLICATE_KEY = 11000


class Fenced(Protocol):
    id: str
    fence: dict[str, int]


A = TypeVar("A", bound=Fenced)


def without_bookkeeping(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document as the aggregate's fields: `_id` renamed `id`, the batch path's marker dropped."""
    doc = dict(doc)
    doc["id"] = doc.pop("_id")
    doc.pop(BATCH_MARKER, None)
    return doc


def stale_leader(leader: LeaderCaller, held: int, what: str) -> FencedError:
    return FencedError(f"stale leader epoch {leader.epoch}: {what} was written by {leader.service} epoch {held} "
                       f"since; this controller no longer leads", service=leader.service, epoch=leader.epoch)


class VersionedCollection(Generic[A]):
    """Inserts and version-checked, leader-fenced saves of one aggregate type in one collection.

    `to_document` gives the aggregate as stored (with `_id`; the tokens are added here); `field` names its
    optimistic version (`version`, or `revision` for lablet definitions, whose `version` is their content
    version); `kind` and `id_detail` make the errors say what lost (`worker 42 changed since version 3`). Every
    method leaves the aggregate at the version and tokens it now has in the store (the ones it wrote, or
    unchanged when it lost)."""

    def __init__(self, collection: AsyncCollection[Any], to_document: Callable[[A], dict[str, Any]], *,
                 kind: str, id_detail: str, field: str = "version",
                 duplicate: Callable[[A], str] | None = None) -> None:
        self.collection = collection
        self._to_document = to_document
        self._kind = kind
        self._id_detail = id_detail
        self._field = field
        self._duplicate = duplicate or (lambda item: f"{kind} {item.id} already exists")
        self.lost_races = 0
        """Writes that lost a version race since start (each one re-read and re-applied by its use case): a
        rising count is contention on one aggregate type (`lcm_version_conflicts` in `/metrics`)."""

    def _version(self, item: A) -> int:
        return int(getattr(item, self._field))

    def _set_version(self, item: A, version: int) -> None:
        setattr(item, self._field, version)

    def _fence(self, item: A, leader: LeaderCaller | None) -> tuple[dict[str, Any], dict[str, int]]:
        """(the filter's fencing condition, the tokens to store) of a write of `item` by `leader`.

        The condition is "no higher epoch of the leader's service", written as the single condition that says
        it of the tokens read (`$lte` the leader's epoch when the service has one, `$exists: false` when not):
        nx-27017 evaluates a bulk write's `$or` without the rest of the filter. Raises `FencedError` without
        writing when the tokens read already hold a higher epoch."""
        tokens = dict(item.fence)
        if leader is None:
            return {}, tokens
        held = tokens.get(leader.service)
        if held is not None and held > leader.epoch:
            raise stale_leader(leader, held, f"{self._kind} {item.id}")
        key = f"{FENCE}.{leader.service}"
        condition = {key: {"$lte": leader.epoch}} if held is not None else {key: {"$exists": False}}
        tokens[leader.service] = leader.epoch
        return condition, tokens

    def _document(self, item: A, version: int, tokens: dict[str, int]) -> dict[str, Any]:
        doc = self._to_document(item)
        doc[self._field] = version
        if tokens:
            doc[FENCE] = tokens
        return doc

    async def insert(self, item: A, leader: LeaderCaller | None = None) -> None:
        """Store a new aggregate at version 1; `ConflictError` when its id (or a unique key) is taken."""
        _, tokens = self._fence(item, leader)
        try:
            await self.collection.insert_one(self._document(item, 1, tokens))
        except DuplicateKeyError as exc:
            raise ConflictError(self._duplicate(item), **{self._id_detail: item.id}) from exc
        self._set_version(item, 1)
        item.fence = tokens

    async def insert_many(self, items: Sequence[A], leader: LeaderCaller | None = None) -> set[str]:
        """New aggregates in one round trip; returns the ids inserted (a duplicate is skipped, not raised)."""
        if not items:
            return set()
        tokens = [self._fence(item, leader)[1] for item in items]
        docs = [self._document(item, 1, t) for item, t in zip(items, tokens, strict=True)]
        try:
            await self.collection.insert_many(docs, ordered=False)
            inserted = {item.id for item in items}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            inserted = {item.id for item in items} - {docs[e["index"]]["_id"] for e in errors}
        for item, t in zip(items, tokens, strict=True):
            if item.id in inserted:
                self._set_version(item, 1)
                item.fence = t
        return inserted

    async def save(self, item: A, leader: LeaderCaller | None = None) -> None:
        """Write `item` if nobody wrote since it was read and, for a leader's write, no newer epoch of its
        service ever wrote it; bump its version. A lost race is a `VersionConflict`, a newer leader's token a
        `FencedError`."""
        expected = self._version(item)
        condition, tokens = self._fence(item, leader)
        try:
            result = await self.collection.replace_one({"_id": item.id, self._field: expected, **condition},
                                                       self._document(item, expected + 1, tokens))
        except DuplicateKeyError as exc:  # a unique key another aggregate holds: retrying cannot help
            raise ConflictError(self._duplicate(item), **{self._id_detail: item.id}) from exc
        if result.matched_count != 1:
            await self._refuse_fenced(item, leader)
            self.lost_races += 1
            raise VersionConflict(f"{self._kind} {item.id} changed since {self._field} {expected}; re-read and "
                                  "retry", **{self._id_detail: item.id})
        self._set_version(item, expected + 1)
        item.fence = tokens

    async def _refuse_fenced(self, item: A, leader: LeaderCaller | None) -> None:
        """After a miss: `FencedError` when a newer epoch of the leader's service has written the document
        (the retry would find that too; saying it now spares a re-read and a re-applied change)."""
        if leader is None:
            return
        stored = await self.collection.find_one({"_id": item.id}, {FENCE: 1})
        held = ((stored or {}).get(FENCE) or {}).get(leader.service)
        if held is not None and held > leader.epoch:
            raise stale_leader(leader, held, f"{self._kind} {item.id}")

    async def save_many(self, items: Sequence[A], leader: LeaderCaller | None = None) -> set[str]:
        """Write a batch in one round trip; returns the ids that lost a race (left at their old version).
        A batch of a leader that any of its aggregates shows deposed is refused whole (`FencedError`),
        before anything is written."""
        if not items:
            return set()
        fenced = [self._fence(item, leader) for item in items]
        marks: dict[str, str] = {}
        ops = []
        for item, (condition, tokens) in zip(items, fenced, strict=True):
            doc = self._document(item, self._version(item) + 1, tokens)
            doc[BATCH_MARKER] = marks[item.id] = uuid.uuid4().hex
            ops.append(ReplaceOne({"_id": item.id, self._field: self._version(item), **condition}, doc))
        won: set[str]
        try:
            result = await self.collection.bulk_write(ops, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
            won = await self._batch_winners(marks)
        else:
            # Each filter names one document (id + version): all matched means every write won, and the usual
            # case needs no second round trip to find out which.
            won = set(marks) if result.matched_count == len(ops) else await self._batch_winners(marks)
        for item, (_, tokens) in zip(items, fenced, strict=True):
            if item.id in won:
                self._set_version(item, self._version(item) + 1)
                item.fence = tokens
        self.lost_races += len(marks) - len(won)
        return set(marks) - won

    async def _batch_winners(self, marks: dict[str, str]) -> set[str]:
        return await batch_winners(self.collection, marks)


async def batch_winners(collection: AsyncCollection[Any], marks: dict[str, str]) -> set[str]:
    """The ids whose stored document carries the mark this batch wrote (`BATCH_MARKER`): its writes that won."""
    return {d["_id"] async for d in collection.find(
        {"_id": {"$in": list(marks)}, BATCH_MARKER: {"$in": list(marks.values())}}, {"_id": 1})}
