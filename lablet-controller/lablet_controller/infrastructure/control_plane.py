"""The control plane's internal API as the lablet-controller uses it (docs/lablets.md): sessions, definitions,
workers, pools. Every state change of a session goes through here; mutations carry the leader epoch (the client)."""

from __future__ import annotations

import logging
from typing import Any

from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.domain.lablets import (
    DefinitionWorkView,
    LabletSessionStatus,
    MarkReadyRequest,
    ResourceObservation,
    ScheduleRequest,
    SchedulingDecision,
    SessionWorkView,
    TransitionRequest,
)
from lcm_core.domain.pools import PoolView
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import NotFoundError

logger = logging.getLogger(__name__)

SESSIONS = "/api/internal/lablet-sessions"


class LabletGateway:
    def __init__(self, client: ControlPlaneClient, *, page_size: int = 1000) -> None:
        self._client = client
        self._page_size = page_size
        self._definitions: dict[tuple[str, int], DefinitionWorkView] = {}
        self._pools_unserved_logged = False

    # ---- reads ----------------------------------------------------------------------------------

    async def sessions(self, *statuses: LabletSessionStatus) -> list[SessionWorkView]:
        """Every session in one of `statuses`, page by page."""
        found: list[SessionWorkView] = []
        wanted = ",".join(s.value for s in statuses) or None
        while True:
            page = await self._client.get(SESSIONS, status=wanted, limit=self._page_size, offset=len(found))
            found += [SessionWorkView.model_validate(item) for item in page["items"]]
            if not page["items"] or len(found) >= page["total"]:
                return found

    async def session(self, session_id: str) -> SessionWorkView:
        return SessionWorkView.model_validate(await self._client.get(f"{SESSIONS}/{session_id}"))

    async def definition(self, definition_id: str, version: int) -> DefinitionWorkView:
        """A definition version (immutable once stored, so cached)."""
        key = (definition_id, version)
        cached = self._definitions.get(key)
        if cached is None:
            body = await self._client.get(f"/api/internal/lablet-definitions/{definition_id}", version=version)
            cached = self._definitions[key] = DefinitionWorkView.model_validate(body)
        return cached

    async def workers(self, page_size: int = 5000) -> list[WorkerSummary]:
        """Every live worker's row (state, licence, track and capacity), page by page."""
        found: list[WorkerSummary] = []
        while True:
            page = await self._client.get("/api/internal/workers", limit=page_size, offset=len(found),
                                          view="brief")
            found += [WorkerSummary.model_validate(item) for item in page["items"]]
            if not page["items"] or len(found) >= page["total"]:
                return found

    async def worker(self, worker_id: str) -> WorkerSummary:
        """One worker (its detail, read as a row: what the lablet-controller needs of it)."""
        return WorkerSummary.model_validate(await self._client.get(f"/api/internal/workers/{worker_id}"))

    async def pools(self) -> list[PoolView]:
        """Every pool that is not terminated (one per lab track). A control plane older than pools answers 404
        (a rolling upgrade that reached the controllers first): no pools, so sessions are placed as before."""
        try:
            body = await self._client.get("/api/internal/pools")
        except NotFoundError:
            if not self._pools_unserved_logged:
                logger.warning("the control plane does not serve /api/internal/pools: scheduling without pools")
                self._pools_unserved_logged = True
            return []
        return [PoolView.model_validate(item) for item in body["items"]]

    # ---- session commands -----------------------------------------------------------------------

    async def _post(self, session_id: str, action: str, body: Any) -> SessionWorkView:
        reply = await self._client.post(f"{SESSIONS}/{session_id}/{action}", body.model_dump(mode="json"))
        return SessionWorkView.model_validate(reply)

    async def schedule(self, session_id: str, worker_id: str | None, decision: SchedulingDecision
                       ) -> SessionWorkView:
        """Reserve on `worker_id` (the CPA picks the ports; 409 if it no longer fits), or record "no
        candidate" with `worker_id=None`."""
        return await self._post(session_id, "schedule", ScheduleRequest(worker_id=worker_id, decision=decision))

    async def transition(self, session_id: str, to: LabletSessionStatus, reason: str,
                         error: str | None = None) -> SessionWorkView:
        body = TransitionRequest(to=to, reason=reason[:1000], error=error[:2000] if error else None)
        return await self._post(session_id, "transition", body)

    async def mark_ready(self, session_id: str, cml_lab_id: str) -> SessionWorkView:
        return await self._post(session_id, "mark-ready", MarkReadyRequest(cml_lab_id=cml_lab_id))

    async def report_observation(self, session_id: str, observation: ResourceObservation) -> SessionWorkView:
        return await self._post(session_id, "resource-observations", observation)
