"""MongoDB persistence of SystemSettings (singleton), WorkerTemplates and controller status reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from control_plane_api.domain.system_settings import SystemSettings, WorkerTemplate
from lcm_core.errors import ConflictError, NotFoundError, VersionConflict

SETTINGS_ID = "system"


class SettingsRepository:
    """The singleton settings document; absent means "all defaults" (version 0)."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection

    async def get(self) -> SystemSettings:
        doc = await self._c.find_one({"_id": SETTINGS_ID})
        if doc is None:
            return SystemSettings()
        doc.pop("_id")
        return SystemSettings.model_validate(doc)

    async def save(self, settings: SystemSettings) -> SystemSettings:
        """Write when the stored version is still `settings.version`; return the stored result."""
        expected = settings.version
        doc = settings.model_dump(mode="json") | {"version": expected + 1, "updated_at": settings.updated_at}
        if expected == 0:
            try:
                await self._c.insert_one({"_id": SETTINGS_ID, **doc})
            except DuplicateKeyError as exc:
                raise VersionConflict("settings changed meanwhile; re-read and retry") from exc
        else:
            result = await self._c.replace_one({"_id": SETTINGS_ID, "version": expected}, doc)
            if result.matched_count != 1:
                raise VersionConflict(f"settings changed since version {expected}; re-read and retry")
        return settings.model_copy(update={"version": expected + 1})


class TemplateRepository:
    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection

    async def list(self) -> list[WorkerTemplate]:
        return [_template(d) async for d in self._c.find({}).sort("_id", ASCENDING)]

    async def get(self, name: str) -> WorkerTemplate:
        doc = await self._c.find_one({"_id": name})
        if doc is None:
            raise NotFoundError(f"template {name!r} not found")
        return _template(doc)

    async def insert(self, template: WorkerTemplate) -> WorkerTemplate:
        stored = template.model_copy(update={"version": 1})
        try:
            await self._c.insert_one(_template_doc(stored))
        except DuplicateKeyError as exc:
            raise ConflictError(f"template {template.name!r} already exists") from exc
        return stored

    async def replace(self, template: WorkerTemplate, expected_version: int) -> WorkerTemplate:
        stored = template.model_copy(update={"version": expected_version + 1})
        result = await self._c.replace_one({"_id": template.name, "version": expected_version},
                                           _template_doc(stored))
        if result.matched_count != 1:
            await self.get(template.name)  # 404 when it is gone
            raise VersionConflict(f"template {template.name!r} changed since version {expected_version}")
        return stored

    async def delete(self, name: str, expected_version: int | None) -> bool:
        """Delete (guarded by the version when given); False when it did not exist (idempotent)."""
        flt: dict[str, Any] = {"_id": name}
        if expected_version is not None:
            flt["version"] = expected_version
        result = await self._c.delete_one(flt)
        if result.deleted_count == 0 and expected_version is not None and await self._c.find_one({"_id": name}):
            raise VersionConflict(f"template {name!r} changed since version {expected_version}")
        return result.deleted_count == 1


def _template(doc: dict[str, Any]) -> WorkerTemplate:
    doc = dict(doc)
    doc["name"] = doc.pop("_id")
    return WorkerTemplate.model_validate(doc)


def _template_doc(template: WorkerTemplate) -> dict[str, Any]:
    doc = template.model_dump(mode="json")
    doc["_id"] = doc.pop("name")
    return doc


class ControllerStatusRepository:
    """The latest status report of every controller replica (served by `GET /api/system/controllers`)."""

    def __init__(self, collection: AsyncCollection) -> None:
        self._c = collection

    async def record(self, service: str, identity: str, report: dict[str, Any], at: datetime) -> None:
        # Whole-document replace (then insert on a miss) rather than `$set` with upsert: it is the form every
        # MongoDB-wire server we run against stores faithfully (nx-27017 turns `$set` datetimes into strings).
        key = f"{service}/{identity}"
        doc = {"_id": key, "service": service, "identity": identity, "report": report, "received_at": at}
        for _ in range(3):
            if (await self._c.replace_one({"_id": key}, doc)).matched_count == 1:
                return
            try:
                await self._c.insert_one(doc)
                return
            except DuplicateKeyError:
                continue  # another replica inserted it first: replace again

    async def ensure_indexes(self) -> None:
        await self._c.create_index([("received_at", ASCENDING)], name="received_at")

    async def all(self) -> list[dict[str, Any]]:
        return [d async for d in self._c.find({}).sort("_id", ASCENDING)]

    async def forget_older_than(self, before: datetime) -> int:
        """Delete the reports received before `before`, except each service's newest when the service has no
        later one (what keeps a service that stopped reporting known)."""
        old = [d async for d in self._c.find({"received_at": {"$lt": before}},
                                             {"_id": 1, "service": 1, "received_at": 1})]
        kept: dict[str, dict[str, Any]] = {}
        for doc in old:
            if doc["service"] not in kept or doc["received_at"] > kept[doc["service"]]["received_at"]:
                kept[doc["service"]] = doc
        for service in list(kept):
            if await self._c.find_one({"service": service, "received_at": {"$gte": before}}, {"_id": 1}):
                del kept[service]
        keep = {doc["_id"] for doc in kept.values()}
        gone = [doc["_id"] for doc in old if doc["_id"] not in keep]
        if not gone:
            return 0
        return (await self._c.delete_many({"_id": {"$in": gone}})).deleted_count
