"""Public lablet-session routes: viewers read; admins create, request observations and terminate."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from control_plane_api.api.lablet_views import (
    SessionPage,
    SessionView,
    Strict,
    enum_filter,
    enum_values,
    session_page,
    session_view,
)
from control_plane_api.api.security import CP, Admin, Viewer
from control_plane_api.domain.lablet_queries import SESSION_SORTABLE, SessionQuery
from lcm_core.domain.lablets import LabletSessionStatus
from lcm_core.domain.types import Label, Text
from lcm_core.errors import InvalidError

router = APIRouter(prefix="/api/lablet-sessions", tags=["lablet-sessions"])

EARLIEST = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
LATEST = datetime.fromisoformat("2200-01-01T00:00:00+00:00")


class CreateSession(Strict):
    definition_id: Annotated[Label, Field(min_length=1, max_length=64)]
    timeslot_start: AwareDatetime
    timeslot_end: AwareDatetime
    owner: Annotated[Label, Field(min_length=1, max_length=200)] | None = None
    """The student (defaults to the caller)."""
    idempotency_key: Annotated[Label, Field(min_length=1, max_length=128)] | None = None
    """Repeat the request with the same key and the same session is returned."""


class ActionBody(Strict):
    reason: Text | None = Field(default=None, max_length=500)


class ObservationRequested(BaseModel):
    session_id: str
    request_id: str
    """The id the lablet-controller's observation will answer."""
    status: LabletSessionStatus


if TYPE_CHECKING:
    # `enum_filter`/`csv_filter` build the annotation at run time (validation and the API's document); a type
    # checker cannot follow that, and sees what the parameter holds: the values given, or None.
    SessionStatuses = list[str] | None
else:
    SessionStatuses = enum_filter(LabletSessionStatus, "session status", "Statuses, comma-separated")


def statuses(values: list[str] | None) -> list[str]:
    return enum_values(values, LabletSessionStatus, "session status")


@router.get("", summary="List lablet sessions with filters and paging")
async def list_sessions(
    cp: CP, _who: Viewer,
    status: SessionStatuses = None,
    definition_id: Annotated[str | None, Query(max_length=64)] = None,
    worker_id: Annotated[str | None, Query(max_length=64)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    sort: Annotated[str, Query(description=f"One of: {', '.join(sorted(SESSION_SORTABLE))}")] = "created_at",
    order: Literal["asc", "desc"] = "desc",
) -> SessionPage:
    query = SessionQuery(status=statuses(status), definition_id=definition_id, worker_id=worker_id, owner=owner)
    items, total = await cp.lablet_sessions.page(query, offset, limit, sort, descending=order == "desc")
    return session_page(items, total, offset, limit)


@router.post("", status_code=201, summary="Create a session of an active definition for a timeslot")
async def create_session(body: CreateSession, cp: CP, who: Admin) -> SessionView:
    for value in (body.timeslot_start, body.timeslot_end):
        if not EARLIEST <= value <= LATEST:
            raise InvalidError("timeslots lie between the years 2000 and 2200")
    session = await cp.lablet_sessions.create(body.definition_id, body.owner or who.subject, body.timeslot_start,
                                              body.timeslot_end, by=who.subject,
                                              idempotency_key=body.idempotency_key)
    return session_view(session)


@router.get("/{session_id}", summary="Session detail (allocation, observations, history)")
async def get_session(session_id: str, cp: CP, _who: Viewer) -> SessionView:
    return session_view(await cp.lablet_sessions.get(session_id))


@router.post("/{session_id}/observe-resources", status_code=202,
             summary="Ask the lablet-controller to observe the live lab now (ready or running)")
async def observe_resources(session_id: str, cp: CP, who: Admin) -> ObservationRequested:
    session, request_id = await cp.lablet_sessions.request_observation(session_id, by=who.subject)
    return ObservationRequested(session_id=session.id, request_id=request_id, status=session.status)


@router.post("/{session_id}/terminate", summary="Terminate the session (the controller tears its lab down)")
async def terminate(session_id: str, cp: CP, who: Admin, body: ActionBody | None = None) -> SessionView:
    reason = body.reason if body else None
    return session_view(await cp.lablet_sessions.terminate(session_id, by=who.subject, reason=reason))
