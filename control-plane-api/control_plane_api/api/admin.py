"""Settings, worker templates, the controllers' status page and the revocation of dashboard sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from control_plane_api.api.security import CP, Admin, Viewer
from control_plane_api.application.settings import ControllersOverview, SettingsChange
from control_plane_api.domain.system_settings import SystemSettings, WorkerTemplate
from lcm_core.domain.types import JSON_INT64_MAX, Count
from lcm_core.errors import InvalidError

settings_router = APIRouter(prefix="/api/settings", tags=["settings"])
templates_router = APIRouter(prefix="/api/templates", tags=["templates"])
system_router = APIRouter(prefix="/api/system", tags=["system"])
sessions_router = APIRouter(prefix="/api/admin/sessions", tags=["auth"])


@settings_router.get("", summary="System settings: discovery, monitoring thresholds, idle detection")
async def get_settings(cp: CP, _who: Viewer) -> SystemSettings:
    return await cp.system_settings.get()


@settings_router.put("", summary="Change settings (sections given replace the stored ones; version-guarded)")
async def put_settings(body: SettingsChange, cp: CP, who: Admin) -> SystemSettings:
    return await cp.system_settings.update(body, by=who.subject)


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: WorkerTemplate
    version: Count
    """The version read; a concurrent change makes this a 409."""


@templates_router.get("", summary="Worker templates")
async def list_templates(cp: CP, _who: Viewer) -> list[WorkerTemplate]:
    return await cp.templates.list()


@templates_router.post("", status_code=201, summary="Create a template (409 if the name exists)")
async def create_template(body: WorkerTemplate, cp: CP, who: Admin) -> WorkerTemplate:
    return await cp.templates.create(body, by=who.subject)


@templates_router.get("/{name}", summary="One template")
async def get_template(name: str, cp: CP, _who: Viewer) -> WorkerTemplate:
    return await cp.templates.get(name)


@templates_router.put("/{name}", summary="Replace a template (version-guarded)")
async def put_template(name: str, body: TemplateUpdate, cp: CP, who: Admin) -> WorkerTemplate:
    if body.template.name != name:
        raise InvalidError(f"the body names template {body.template.name!r}, the path {name!r}")
    return await cp.templates.replace(body.template, body.version, by=who.subject)


@templates_router.delete("/{name}", status_code=204, summary="Delete a template (idempotent)")
async def delete_template(
    name: str, cp: CP, who: Admin,
    version: Annotated[int | None, Query(ge=0, le=JSON_INT64_MAX, description="Only delete this version")] = None,
) -> Response:
    await cp.templates.delete(name, version, by=who.subject)
    return Response(status_code=204)


@system_router.get("/controllers", summary="Controllers: leader, loops, success rates")
async def controllers(cp: CP, _who: Viewer) -> ControllersOverview:
    return await cp.controllers.overview()


class RevokedSessions(BaseModel):
    subject: str
    revoked: int
    """How many of the user's dashboard sessions were still open and are now ended."""


@sessions_router.delete("/{subject}", summary="End every dashboard session of a user (their cookies stop working)")
async def revoke_sessions(subject: Annotated[str, Path(min_length=1, max_length=512)], cp: CP,
                          _who: Admin) -> RevokedSessions:
    return RevokedSessions(subject=subject, revoked=await cp.sessions.revoke(subject))
