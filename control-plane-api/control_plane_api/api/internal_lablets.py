"""Internal lablet routes for the lablet-controller (`X-API-Key`; mutations fenced by its leader epoch).

Bodies and views are the shared contract of `lcm_core.domain.lablets` (docs/lablets.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from control_plane_api.api.lablet_sessions import SessionStatuses, statuses
from control_plane_api.api.lablet_views import WorkPage, work_page, work_view
from control_plane_api.api.security import CP, Internal, LabletLeader
from control_plane_api.domain.lablet_queries import SessionQuery
from lcm_core.domain.lablets import (
    DefinitionWorkView,
    MarkReadyRequest,
    ResourceObservation,
    ScheduleRequest,
    SessionWorkView,
    TransitionRequest,
)

router = APIRouter(prefix="/api/internal", tags=["internal-lablets"])


@router.get("/lablet-sessions", summary="Sessions for the lablet-controller (brief work view)")
async def list_sessions(
    cp: CP, _caller: Internal,
    status: SessionStatuses = None,
    worker_id: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> WorkPage:
    query = SessionQuery(status=statuses(status), worker_id=worker_id)
    items, total = await cp.lablet_sessions.page(query, offset, limit, sort="timeslot_start")
    return work_page(items, total, offset, limit)


@router.get("/lablet-sessions/{session_id}", summary="One session (work view)")
async def get_session(session_id: str, cp: CP, _caller: Internal) -> SessionWorkView:
    return work_view(await cp.lablet_sessions.get(session_id))


@router.get("/lablet-definitions/{definition_id}", summary="A definition version (with its topology)")
async def get_definition(definition_id: str, cp: CP, _caller: Internal,
                         version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> DefinitionWorkView:
    definition = await cp.definitions.get(definition_id, version)
    return DefinitionWorkView.model_validate(definition.model_dump())


@router.post("/lablet-sessions/{session_id}/schedule",
             summary="Place a pending session on a worker (atomic capacity and port reservation)")
async def schedule(session_id: str, body: ScheduleRequest, cp: CP, caller: LabletLeader) -> SessionWorkView:
    return work_view(await cp.lablet_sessions.schedule(session_id, body, by=caller.by, leader=caller))


@router.post("/lablet-sessions/{session_id}/transition", summary="Move a session along the transition table")
async def transition(session_id: str, body: TransitionRequest, cp: CP, caller: LabletLeader) -> SessionWorkView:
    session = await cp.lablet_sessions.transition(session_id, body.to, body.reason, by=caller.by, error=body.error,
                                                  leader=caller)
    return work_view(session)


@router.post("/lablet-sessions/{session_id}/mark-ready", summary="The lab booted: instantiating → ready")
async def mark_ready(session_id: str, body: MarkReadyRequest, cp: CP, caller: LabletLeader) -> SessionWorkView:
    return work_view(await cp.lablet_sessions.mark_ready(session_id, body.cml_lab_id, by=caller.by, leader=caller))


@router.post("/lablet-sessions/{session_id}/resource-observations",
             summary="Record what the controller observed of the live lab (resources and ports)")
async def resource_observations(session_id: str, body: ResourceObservation, cp: CP,
                                caller: LabletLeader) -> SessionWorkView:
    return work_view(await cp.lablet_sessions.record_observation(session_id, body, leader=caller))
