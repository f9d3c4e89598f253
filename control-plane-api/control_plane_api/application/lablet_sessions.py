"""Lablet session use cases: create, schedule (with the worker reservation), lifecycle, resource observation.

Each command loads the session, applies domain behaviour, saves under the `version` check (re-reading
after a lost race), then publishes its events and writes `{prefix}/sessions/{id}/state`. Capacity is
reserved on the worker *before* the session becomes scheduled and released *after* it leaves the worker.
The sessions, the etcd keys and the publisher are `application.ports`; the lablet-controller leader's commands
name it (`leader`), and every write they make is fenced with its epoch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from control_plane_api.application import versioned
from control_plane_api.application.costs import SessionCosts
from control_plane_api.application.lablet_capacity import CapacityLedger
from control_plane_api.application.lablet_definitions import DefinitionService
from control_plane_api.application.ports import Publisher, SessionKeys, SessionStore, TrackPools
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.lablet_observation import compare_ports, same_observation, significant_difference
from control_plane_api.domain.lablet_queries import SessionQuery
from control_plane_api.domain.lablet_session import LabletSession
from lcm_core.domain.lablets import (
    RELEASING_SESSION_STATUSES,
    TERMINAL_SESSION_STATUSES,
    LabletDefinitionStatus,
    LabletSessionStatus,
    ObserveRequestKey,
    ResourceObservation,
    ScheduleRequest,
    releases_capacity,
)
from lcm_core.errors import ConflictError, InvalidError, NotFoundError, UnavailableError

logger = logging.getLogger(__name__)
S = LabletSessionStatus
SessionChange = Callable[[LabletSession, datetime], list[DomainEvent]]


class SessionService:
    def __init__(self, sessions: SessionStore, definitions: DefinitionService, ledger: CapacityLedger,
                 publisher: Publisher, keys: SessionKeys, pools: TrackPools, review_ratio: float = 0.25,
                 clock: Callable[[], datetime] = utcnow, max_attempts: int = 8,
                 costs: SessionCosts | None = None) -> None:
        self._repo = sessions
        self._pools = pools
        self._costs = costs
        self._definitions = definitions
        self.ledger = ledger
        self._publisher = publisher
        self._keys = keys
        self._review_ratio = review_ratio
        self._clock = clock
        self._attempts = max_attempts

    async def _after_commit(self, session: LabletSession, events: list[DomainEvent]) -> None:
        await self._publisher.publish(events)
        if self._costs is not None:  # a placement starts or ends the session's share of its worker's cost
            await self._costs.record_session(session, events)
        if session.status in TERMINAL_SESSION_STATUSES:
            # Nothing is left for a controller to do: the keys go (their deletion wakes the watch, and the
            # session reads as terminal), so etcd does not keep one key per session ever run.
            await self._keys.delete_prefix(self._keys.session_key(session.id, ""))
        else:
            await self._keys.put_json(self._keys.session_key(session.id, "state"), session.state_key())

    async def _request_capacity(self, pool_id: str, session_id: str) -> None:
        """Wake the pool's autoscaler (it watches `pools/{id}/`): it counts what waits for the pool and what is
        booked on its track, and looks now rather than at its next resync."""
        await self._keys.put_json(self._keys.pool_key(pool_id, "capacity_request"), {
            "pool_id": pool_id, "session_id": session_id, "at": self._clock().isoformat()})

    async def _booked(self, session: LabletSession) -> None:
        """A new booking of a track that has a pool: a class booked for later is seen within seconds. Best
        effort, like every reactive key (the autoscaler resyncs): the session stands either way."""
        if session.lab_track is None:
            return
        try:
            pool_id = await self._pools.live_for_track(session.lab_track)
        except UnavailableError as exc:
            logger.warning("session %s: the pool of track %s not woken: %s", session.id, session.lab_track,
                           exc.message)
            return
        if pool_id is not None:
            await self._request_capacity(pool_id, session.id)

    async def mutate(self, session_id: str, change: SessionChange,
                     leader: LeaderCaller | None = None) -> tuple[LabletSession, bool]:
        """(session, changed): load → change → save(version), re-read after a lost race (`versioned.mutate`)."""
        done = await versioned.mutate(self._repo, session_id, change, clock=self._clock, attempts=self._attempts,
                                      leader=leader, after_commit=self._after_commit)
        return done.aggregate, done.written

    # ----------------------------------------------------------------- reads

    async def get(self, session_id: str) -> LabletSession:
        return await self._repo.get(session_id)

    async def page(self, query: SessionQuery, offset: int, limit: int, sort: str = "created_at",
                   descending: bool = False) -> tuple[list[LabletSession], int]:
        """A page of the sessions `query` selects, and how many it selects in all."""
        return await self._repo.page(query, offset, limit, sort, descending)

    # ----------------------------------------------------------------- creation

    async def create(self, definition_id: str, owner: str, start: datetime, end: datetime, by: str,
                     idempotency_key: str | None = None) -> LabletSession:
        definition = await self._definitions.get(definition_id)
        if definition.status is not LabletDefinitionStatus.ACTIVE:
            raise ConflictError(f"definition {definition.name!r} is {definition.status.value}; sessions are "
                                "created for active definitions only")
        now = self._clock()
        if end <= start:
            raise InvalidError("the timeslot must end after it starts")
        if end <= now:
            raise InvalidError("the timeslot is already over")
        if end - start > timedelta(minutes=definition.max_duration_minutes):
            raise InvalidError(f"the timeslot lasts longer than the definition's {definition.max_duration_minutes} "
                               "minutes")
        session, events = LabletSession.create(definition, owner, start, end, now, by)
        if idempotency_key:
            session.id = uuid.uuid5(uuid.NAMESPACE_URL, f"lcm:lablet-session:{idempotency_key}").hex
            events = [DomainEvent(type=e.type, subject_id=session.id, data={**e.data, "session_id": session.id})
                      for e in events]
            try:
                return await self._repo.get(session.id)
            except NotFoundError:
                pass
        try:
            await self._repo.insert(session)
        except ConflictError:
            if idempotency_key:
                return await self._repo.get(session.id)
            raise
        await self._after_commit(session, events)
        await self._booked(session)
        return session

    # ----------------------------------------------------------------- scheduling

    async def schedule(self, session_id: str, request: ScheduleRequest, by: str,
                       leader: LeaderCaller | None = None) -> LabletSession:
        session = await self._repo.get(session_id)
        worker_id = request.worker_id
        if worker_id is None:
            found, _ = await self.mutate(session_id, lambda s, now: s.record_no_candidate(request.decision, now),
                                         leader)
            pool_id = request.decision.waiting_for_pool
            if pool_id is not None:  # the session waits for its track's pool to grow
                await self._request_capacity(pool_id, found.id)
            return found
        if session.status is S.SCHEDULED and session.worker_id == worker_id:
            return session  # repeated call: same allocation
        if session.status is not S.PENDING:
            raise ConflictError(f"session {session_id} is {session.status.value}; only a pending session is "
                                "scheduled", session_id=session_id)
        if session.is_overdue(self._clock()):
            await self.expire(session_id, by, leader)
            raise ConflictError(f"session {session_id} expired: its timeslot ended at "
                                f"{session.timeslot_end.isoformat()}", session_id=session_id)
        ports = await self.ledger.reserve(worker_id, session_id, session.resource_requirements,
                                          session.port_template, session.version, leader)
        try:
            found, _ = await self.mutate(session_id, lambda s, now: s.schedule(worker_id, ports,
                                                                                request.decision, now, by), leader)
            return found
        except Exception:
            current = await self._repo.get(session_id)
            if not (current.worker_id == worker_id and current.status is S.SCHEDULED):
                await self.ledger.release(worker_id, session_id, leader)
            raise

    # ----------------------------------------------------------------- lifecycle

    async def _moved(self, session_id: str, change: SessionChange, leader: LeaderCaller | None) -> LabletSession:
        """Apply a lifecycle change; release the worker's capacity if the session left it (exactly once: the
        release is keyed by session id; it is repeated harmlessly when a repeated call finds it done)."""
        worker_before: dict[str, tuple[str | None, S]] = {}

        def tracked(session: LabletSession, now: datetime) -> list[DomainEvent]:
            worker_before["it"] = (session.worker_id, session.status)
            return change(session, now)

        session, changed = await self.mutate(session_id, tracked, leader)
        worker_id, old_status = worker_before["it"]
        if (changed and releases_capacity(old_status, session.status)) or (
                not changed and session.status in RELEASING_SESSION_STATUSES):
            await self.ledger.release(worker_id, session_id, leader)
        return session

    async def transition(self, session_id: str, to: LabletSessionStatus, reason: str, by: str,
                         error: str | None = None, leader: LeaderCaller | None = None) -> LabletSession:
        return await self._moved(session_id, lambda s, now: s.transition(to, reason, now, by, error), leader)

    async def mark_ready(self, session_id: str, cml_lab_id: str, by: str,
                         leader: LeaderCaller | None = None) -> LabletSession:
        session, _ = await self.mutate(session_id, lambda s, now: s.mark_ready(cml_lab_id, now, by), leader)
        return session

    async def terminate(self, session_id: str, by: str, reason: str | None) -> LabletSession:
        return await self._moved(session_id, lambda s, now: s.request_terminate(now, by,
                                                                                reason or f"terminated by {by}"),
                                 None)

    async def expire(self, session_id: str, by: str, leader: LeaderCaller | None = None) -> LabletSession:
        return await self._moved(session_id, lambda s, now: s.expire(now, by), leader)

    async def expire_overdue(self, by: str = "control-plane-api") -> int:
        """Pending/scheduled sessions whose timeslot ended become expired (safe on every replica)."""
        expired = 0
        for session_id in await self._repo.overdue(self._clock()):
            try:
                session = await self.expire(session_id, by)
            except ConflictError as exc:
                logger.info("session %s not expired now: %s", session_id, exc.message)
                continue
            expired += session.status is S.EXPIRED
        return expired

    # ----------------------------------------------------------------- resource observation

    async def request_observation(self, session_id: str, by: str) -> tuple[LabletSession, str]:
        """Write the etcd key the lablet-controller watches; a pending request is answered, not doubled."""
        def change(session: LabletSession, now: datetime) -> list[DomainEvent]:
            if session.observe_requested and session.observe_request_id:
                return []
            return session.request_observation(uuid.uuid4().hex, now, by)

        session, _ = await self.mutate(session_id, change)
        request_id = session.observe_request_id or ""
        key = ObserveRequestKey(session_id=session.id, request_id=request_id, requested_by=by,
                                requested_at=session.updated_at)
        await self._keys.put_json(self._keys.session_key(session.id, "observe_resources"), key.model_dump(mode="json"))
        return session, request_id

    async def record_observation(self, session_id: str, observation: ResourceObservation,
                                 leader: LeaderCaller | None = None) -> LabletSession:
        def change(session: LabletSession, now: datetime) -> list[DomainEvent]:
            if same_observation(session.observed_resources, observation):
                return []  # the same observation posted again
            return session.record_observation(observation, now)

        session, changed = await self.mutate(session_id, change, leader)
        if changed:
            drift = compare_ports(session.allocated_ports, observation.observed_ports)
            if drift.detected and session.worker_id:
                await self.ledger.record_drift(session.worker_id, session.id, drift.drifted_ports(), leader)
            reason = significant_difference(session.resource_requirements, observation, self._review_ratio)
            if reason is not None:
                await self._definitions.flag_for_review(session.definition_id, session.definition_version, reason,
                                                        leader)
        await self._keys.delete(self._keys.session_key(session.id, "observe_resources"))
        return session
