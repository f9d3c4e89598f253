"""MongoDB persistence of lablet definitions (with version snapshots) and sessions, each written through the
shared version-checked path (`mongo_versions.VersionedCollection`: definitions on `revision`, sessions on
`version`); a lost race is a `VersionConflict`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.lablet_definition import LabletDefinition
from control_plane_api.domain.lablet_queries import SESSION_SORTABLE, SessionQuery
from control_plane_api.domain.lablet_session import LabletSession
from control_plane_api.infrastructure.mongo_versions import VersionedCollection, without_bookkeeping
from lcm_core.domain.lablets import EXPIRABLE_SESSION_STATUSES, HOLDING_SESSION_STATUSES, LabletSessionStatus
from lcm_core.domain.pool_capacity import WaitingDemand
from lcm_core.domain.pool_forecast import Booking
from lcm_core.domain.workers import Resources
from lcm_core.errors import NotFoundError


def _to_doc(model: Any) -> dict[str, Any]:
    doc = model.model_dump(mode="python", by_alias=True)
    doc["_id"] = doc.pop("id")
    return doc


def _from_doc(doc: dict[str, Any]) -> dict[str, Any]:
    return without_bookkeeping(doc)


class DefinitionRepository:
    def __init__(self, heads: AsyncCollection, versions: AsyncCollection) -> None:
        self._c = heads
        self._v = versions
        self._store: VersionedCollection[LabletDefinition] = VersionedCollection(
            heads, _to_doc, kind="lablet definition", id_detail="definition_id", field="revision",
            duplicate=lambda d: f"a lablet definition named {d.name!r} already exists")

    @property
    def lost_races(self) -> int:
        """Writes that lost a version race since start (see `VersionedCollection.lost_races`)."""
        return self._store.lost_races

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("name", ASCENDING)], unique=True, name="name_unique")
        await self._c.create_index([("status", ASCENDING)], name="status")
        await self._v.create_index([("definition_id", ASCENDING), ("version", ASCENDING)], name="definition_version")

    async def get(self, definition_id: str) -> LabletDefinition:
        doc = await self._c.find_one({"_id": definition_id})
        if doc is None:
            raise NotFoundError(f"lablet definition {definition_id} not found", definition_id=definition_id)
        return LabletDefinition.model_validate(_from_doc(doc))

    async def by_name(self, name: str) -> LabletDefinition | None:
        doc = await self._c.find_one({"name": name})
        return None if doc is None else LabletDefinition.model_validate(_from_doc(doc))

    async def get_version(self, definition_id: str, version: int) -> LabletDefinition:
        """A definition as it was at `version` (the snapshot; the head if it is the current version)."""
        doc = await self._v.find_one({"_id": f"{definition_id}:{version}"})
        if doc is not None:
            doc = {k: v for k, v in doc.items() if k != "definition_id"}
            doc["_id"] = definition_id
            return LabletDefinition.model_validate(_from_doc(doc))
        head = await self.get(definition_id)
        if head.version != version:
            raise NotFoundError(f"lablet definition {definition_id} has no version {version}",
                                definition_id=definition_id)
        return head

    async def versions(self, definition_id: str) -> list[LabletDefinition]:
        docs = self._v.find({"definition_id": definition_id}).sort("version", ASCENDING)
        found = []
        async for doc in docs:
            doc = {k: v for k, v in doc.items() if k != "definition_id"}
            doc["_id"] = definition_id
            found.append(LabletDefinition.model_validate(_from_doc(doc)))
        return found

    async def page(self, status: Sequence[str], lab_track: str | None, skip: int,
                   limit: int) -> tuple[list[LabletDefinition], int]:
        flt: dict[str, Any] = {}
        if status:
            flt["status"] = {"$in": list(status)}
        if lab_track:
            flt["lab_track"] = lab_track
        total = await self._c.count_documents(flt)
        docs = await self._c.find(flt).sort([("name", ASCENDING)]).skip(skip).limit(limit).to_list(length=limit)
        return [LabletDefinition.model_validate(_from_doc(d)) for d in docs], total

    async def _snapshot(self, definition: LabletDefinition) -> None:
        doc = _to_doc(definition)
        doc["definition_id"] = doc["_id"]
        doc["_id"] = f"{definition.id}:{definition.version}"
        await self._v.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def insert(self, definition: LabletDefinition) -> None:
        await self._store.insert(definition)
        await self._snapshot(definition)

    async def save(self, definition: LabletDefinition, leader: LeaderCaller | None = None) -> None:
        await self._store.save(definition, leader)
        await self._snapshot(definition)


#: A booking: a session that is pending or holds a worker (`lcm_core.domain.pool_forecast.Booking`).
BOOKED_STATUSES = sorted(s.value for s in {LabletSessionStatus.PENDING, *HOLDING_SESSION_STATUSES})


def session_filter(query: SessionQuery) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    if query.status:
        flt["status"] = {"$in": list(query.status)}
    for key in ("definition_id", "worker_id", "owner"):
        if getattr(query, key):
            flt[key] = getattr(query, key)
    if query.ids:
        flt["_id"] = {"$in": list(query.ids)}
    return flt


class SessionRepository:
    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection
        self._store: VersionedCollection[LabletSession] = VersionedCollection(
            collection, _to_doc, kind="lablet session", id_detail="session_id")

    @property
    def lost_races(self) -> int:
        """Writes that lost a version race since start (see `VersionedCollection.lost_races`)."""
        return self._store.lost_races

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("status", ASCENDING), ("timeslot_end", ASCENDING)], name="status_end")
        await self._c.create_index([("definition_id", ASCENDING)], name="definition_id")
        await self._c.create_index([("worker_id", ASCENDING)], name="worker_id")
        await self._c.create_index([("status", ASCENDING), ("status_changed_at", ASCENDING)], name="status_since")
        await self._c.create_index([("last_decision.waiting_for_pool", ASCENDING), ("status", ASCENDING)],
                                   name="waiting_for_pool")
        await self._c.create_index([("lab_track", ASCENDING), ("status", ASCENDING), ("timeslot_start", ASCENDING)],
                                   name="track_bookings")

    async def get(self, session_id: str) -> LabletSession:
        doc = await self._c.find_one({"_id": session_id})
        if doc is None:
            raise NotFoundError(f"lablet session {session_id} not found", session_id=session_id)
        return LabletSession.model_validate(_from_doc(doc))

    async def page(self, query: SessionQuery, skip: int = 0, limit: int = 100, sort: str = "created_at",
                   descending: bool = False) -> tuple[list[LabletSession], int]:
        if sort not in SESSION_SORTABLE:
            sort = "created_at"
        flt = session_filter(query)
        total = await self._c.count_documents(flt)
        cursor = self._c.find(flt).sort([(sort, DESCENDING if descending else ASCENDING), ("_id", ASCENDING)])
        docs = await cursor.skip(skip).limit(limit).to_list(length=limit)
        return [LabletSession.model_validate(_from_doc(d)) for d in docs], total

    async def count_in_status_since_before(self, status: str, before: datetime) -> int:
        """Sessions in `status` that entered it before `before` (counted on the `status_since` index)."""
        return await self._c.count_documents({"status": status, "status_changed_at": {"$lt": before}})

    async def overdue(self, now: datetime, limit: int = 500) -> list[str]:
        """Ids of pending/scheduled sessions whose timeslot has ended."""
        flt = {"status": {"$in": [s.value for s in EXPIRABLE_SESSION_STATUSES]}, "timeslot_end": {"$lte": now}}
        return [d["_id"] async for d in self._c.find(flt, {"_id": 1}).limit(limit)]

    async def holding_on(self, session_ids: Sequence[str]) -> dict[str, str | None]:
        """{session id: worker id} of those sessions that hold capacity (a status that holds, on a worker)."""
        flt = {"_id": {"$in": list(session_ids)}, "status": {"$in": [s.value for s in HOLDING_SESSION_STATUSES]}}
        return {d["_id"]: d.get("worker_id") async for d in self._c.find(flt, {"_id": 1, "worker_id": 1})}

    async def waiting_for_pool(self, pool_id: str, fits: Resources | None = None) -> WaitingDemand:
        """The pending sessions whose last scheduling decision waits for the pool, summed by MongoDB (one
        aggregation on a single-field group, which the local stack's MongoDB-wire server evaluates too). With
        `fits`, the sessions needing more CPU or memory than it are counted apart (`too_large`)."""
        waiting: dict[str, Any] = {"status": LabletSessionStatus.PENDING.value,
                                   "last_decision.waiting_for_pool": pool_id}
        held = dict(waiting)
        if fits is not None:  # a template that does not say its capacity (0) bounds nothing
            for name, room in (("cpu_cores", fits.cpu_cores), ("memory_gb", fits.memory_gb)):
                if room > 0:
                    held[f"resource_requirements.{name}"] = {"$lte": room}
        cursor = await self._c.aggregate([
            {"$match": held},
            {"$group": {"_id": None, "sessions": {"$sum": 1},
                        "cpu_cores": {"$sum": "$resource_requirements.cpu_cores"},
                        "memory_gb": {"$sum": "$resource_requirements.memory_gb"}}}])
        found = [d async for d in cursor]
        total = found[0] if found else {"sessions": 0, "cpu_cores": 0, "memory_gb": 0}
        sessions = int(total["sessions"])
        too_large = await self._c.count_documents(waiting) - sessions if held != waiting else 0
        return WaitingDemand(sessions=sessions, cpu_cores=round(float(total["cpu_cores"] or 0), 3),
                             memory_gb=round(float(total["memory_gb"] or 0), 3), too_large=max(0, too_large))

    async def booked_for_track(self, lab_track: str, start: datetime, end: datetime, limit: int) -> list[Booking]:
        """The track's sessions that are pending or hold a worker and overlap [start, end), by timeslot start
        (the `track_bookings` index: track, status, then the start's range)."""
        flt = {"lab_track": lab_track, "status": {"$in": BOOKED_STATUSES},
               "timeslot_start": {"$lt": end}, "timeslot_end": {"$gt": start}}
        fields = {"timeslot_start": 1, "timeslot_end": 1, "resource_requirements": 1, "worker_id": 1,
                  "definition_id": 1}
        cursor = self._c.find(flt, fields).sort([("timeslot_start", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        found = []
        async for doc in cursor:
            needs = doc.get("resource_requirements") or {}
            found.append(Booking(session_id=doc["_id"], timeslot_start=doc["timeslot_start"],
                                 timeslot_end=doc["timeslot_end"], cpu_cores=needs.get("cpu_cores") or 0,
                                 memory_gb=needs.get("memory_gb") or 0, worker_id=doc.get("worker_id"),
                                 definition_id=doc.get("definition_id")))
        return found

    async def observed_for_definition(self, definition_id: str, statuses: Sequence[str],
                                      limit: int = 1000) -> list[LabletSession]:
        flt = {"definition_id": definition_id, "status": {"$in": list(statuses)},
               "observed_resources": {"$ne": None}}
        docs = self._c.find(flt).sort("observed_at", DESCENDING).limit(limit)
        found = [LabletSession.model_validate(_from_doc(d)) async for d in docs]
        return list(reversed(found))

    async def insert(self, session: LabletSession) -> None:
        await self._store.insert(session)

    async def save(self, session: LabletSession, leader: LeaderCaller | None = None) -> None:
        await self._store.save(session, leader)
