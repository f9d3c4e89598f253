"""The scheduling pass: place every pending session (leader only; docs/lablet-controller.md, 'Scheduling').

One pass reads the pending sessions, the workers and the pools **once**, then decides session by session,
oldest timeslot first, with the domain `Scheduler`; a session whose track has a pool is placed on the pool's
workers first, or waits for the pool's capacity (`waiting_for_pool`). Only sessions whose timeslot starts
within `LABLET_SCHEDULE_AHEAD` (capacity is not held days ahead) and has not ended are placed. The CPA
reserves atomically (capacity and ports); after each successful reservation the local view of that worker is
updated, so one pass never over-commits it. A 409 (the worker no longer fits, a race was lost) leaves the
worker out for the rest of the pass and the next candidate is tried, unless the session itself is no longer
pending (then the worker is not to blame). No candidate, or waiting for a pool: the decision is recorded on
the session (it stays pending with the reason; for a waiting one the control plane wakes the pool's
autoscaler), only when the reason changed, so a full fleet does not cost a write per session per pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry.trace import Span

from lablet_controller.application.ports import SchedulingGateway
from lablet_controller.domain.decisions import Decision
from lablet_controller.domain.placement import Requirements, candidate_from
from lablet_controller.domain.scheduling import Scheduler
from lablet_controller.domain.track_pools import pools_by_track
from lcm_core import tracing
from lcm_core.domain.lablets import LabletSessionStatus, SchedulingDecision, SessionWorkView
from lcm_core.errors import ConflictError, InvalidError, NotFoundError

logger = logging.getLogger(__name__)

#: Workers tried for one session in one pass before it waits for the next pass.
MAX_ATTEMPTS_PER_SESSION = 3

#: Placements traced (`session.place`, with their calls to the CPA) in one pass. A pass is one trace: after an
#: outage, or with a backlog a new pool is to absorb, one pass may attempt thousands of sessions, a trace past
#: the SDK's span queue (2048 by default) that then drops spans of every other trace too. The first ones show
#: what the pass did; the rest run unsampled and are counted on `sessions.schedule` (`lcm.sessions.untraced`).
MAX_TRACED_PLACEMENTS = 100


@dataclass
class PassOutcome:
    pending: int = 0
    scheduled: int = 0
    no_candidate: int = 0
    """Sessions left pending with no worker that fits and no pool to wait for."""
    waiting_for_capacity: int = 0
    """Sessions left pending waiting for their track's pool to grow (`waiting_for_pool`)."""
    conflicts: int = 0
    attempted: int = 0
    """Sessions the pass called the CPA for: a reservation, or a new reason to stay pending recorded. The others
    waited with the reason they already had."""
    untraced: int = 0
    """Attempted sessions past `MAX_TRACED_PLACEMENTS`, not traced."""
    latencies_ms: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)
        return {"pending": self.pending, "scheduled": self.scheduled, "no_candidate": self.no_candidate,
                "waiting_for_capacity": self.waiting_for_capacity, "conflicts": self.conflicts,
                "decision_p50_ms": round(ordered[len(ordered) // 2], 3) if ordered else None,
                "decision_max_ms": round(ordered[-1], 3) if ordered else None}


def to_contract(decision: Decision) -> SchedulingDecision:
    return SchedulingDecision.model_validate(decision.to_json())


class SchedulingPass:
    def __init__(self, gateway: SchedulingGateway, scheduler: Scheduler, *, port_capacity: int,
                 schedule_ahead_seconds: float = 900.0, on_scheduled: Callable[[str], None] = lambda _id: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._gateway = gateway
        self.scheduler = scheduler
        self._port_capacity = port_capacity
        self._ahead = timedelta(seconds=schedule_ahead_seconds)
        self._on_scheduled = on_scheduled
        self._clock = clock
        self.last = PassOutcome()

    async def requirements(self, session: SessionWorkView, pool_id: str | None = None) -> Requirements:
        """What `session` needs; `pool_id`: the pool of its track, if it has one."""
        definition = await self._gateway.definition(session.definition_id, session.definition_version)
        needs = session.resource_requirements
        return Requirements(cpu_cores=needs.cpu_cores, memory_gb=needs.memory_gb, storage_gb=needs.storage_gb,
                            nodes=needs.node_count, ports=len(definition.port_template),
                            lab_track=session.lab_track,
                            license_affinity=frozenset(a.lower() for a in session.license_affinity),
                            pool_id=pool_id)

    async def run_once(self) -> PassOutcome:
        """One pass, one trace (`sessions.schedule`), with a `session.place` span per session attempted (up to
        `MAX_TRACED_PLACEMENTS`): the sessions that only wait again cost no span."""
        with tracing.tracer().start_as_current_span("sessions.schedule") as span:
            outcome = await self._run_once()
            span.set_attributes({"lcm.sessions.pending": outcome.pending, "lcm.sessions.scheduled": outcome.scheduled,
                                 "lcm.sessions.attempted": outcome.attempted,
                                 "lcm.sessions.untraced": outcome.untraced,
                                 "lcm.sessions.no_candidate": outcome.no_candidate,
                                 "lcm.sessions.waiting_for_capacity": outcome.waiting_for_capacity})
            return outcome

    async def _run_once(self) -> PassOutcome:
        outcome = PassOutcome()
        now = self._clock()
        # Due: the slot starts within the look-ahead and has not ended (the CPA expires overdue sessions).
        pending = [s for s in await self._gateway.sessions(LabletSessionStatus.PENDING)
                   if s.timeslot_start - self._ahead <= now < s.timeslot_end]
        outcome.pending = len(pending)
        if pending:
            # A worker warming up for its pool's warm pool stops as soon as its CML is up: it takes no session.
            workers = [w for w in await self._gateway.workers() if not w.park_when_ready]
            track_pools = pools_by_track(await self._gateway.pools())
            self.scheduler.refresh((candidate_from(w, default_port_capacity=self._port_capacity) for w in workers),
                                   track_pools.values(), now)
            pool_ids = {track: pool.id for track, pool in track_pools.items()}
            for session in sorted(pending, key=lambda s: (s.timeslot_start, s.id)):
                await self._place(session, outcome, pool_ids)
        self.last = outcome
        return outcome

    async def _place(self, session: SessionWorkView, outcome: PassOutcome, pool_ids: Mapping[str, str]) -> None:
        try:
            req = await self.requirements(session, pool_ids.get(session.lab_track) if session.lab_track else None)
        except NotFoundError:
            logger.warning("session %s: definition %s v%s not found", session.id, session.definition_id,
                           session.definition_version)
            return
        decision = self._decide(req, outcome)
        if not decision.success and session.pending_reason == decision.reason:
            self._count_waiting(decision, outcome)  # waits again, for the reason already recorded: nothing to do
            return
        outcome.attempted += 1
        with self._placement_span(session, outcome) as span:
            await self._attempt(session, req, decision, outcome, span)

    @contextmanager
    def _placement_span(self, session: SessionWorkView, outcome: PassOutcome) -> Iterator[Span]:
        if outcome.attempted > MAX_TRACED_PLACEMENTS:
            outcome.untraced += 1
            with tracing.unsampled() as quiet:
                yield quiet
            return
        with tracing.tracer().start_as_current_span("session.place") as span:
            span.set_attribute(tracing.SESSION_ID, session.id)
            yield span

    def _decide(self, req: Requirements, outcome: PassOutcome) -> Decision:
        decision = self.scheduler.decide(req)
        outcome.latencies_ms.append(decision.latency_ms)
        return decision

    @staticmethod
    def _count_waiting(decision: Decision, outcome: PassOutcome) -> None:
        if decision.waiting_for_pool is not None:
            outcome.waiting_for_capacity += 1
        else:
            outcome.no_candidate += 1

    async def _attempt(self, session: SessionWorkView, req: Requirements, decision: Decision, outcome: PassOutcome,
                       span: Span) -> None:
        """Reserve `decision`'s worker, or the next candidate's after a refusal (up to
        `MAX_ATTEMPTS_PER_SESSION`); no candidate (left): record why the session stays pending."""
        for attempt in range(MAX_ATTEMPTS_PER_SESSION):
            if attempt:
                decision = self._decide(req, outcome)
            if not decision.success or decision.worker_id is None:
                self._count_waiting(decision, outcome)
                await self._record_no_candidate(session, decision)
                return
            try:
                placed = await self._gateway.schedule(session.id, decision.worker_id, to_contract(decision))
            except ConflictError as exc:
                outcome.conflicts += 1
                if not await self._still_pending(session.id):
                    return  # the session moved on (terminated, expired): the worker is not to blame
                logger.info("session %s: worker %s refused the reservation (%s); trying the next candidate",
                            session.id, decision.worker_id, exc.message)
                self.scheduler.exclude(decision.worker_id)
                continue
            except (NotFoundError, InvalidError) as exc:
                logger.warning("session %s could not be scheduled: %s", session.id, exc.message)
                return
            self.scheduler.reserve(decision.worker_id, req)
            span.set_attribute(tracing.WORKER_ID, decision.worker_id)
            outcome.scheduled += 1
            logger.info("session %s scheduled on worker %s (%s, ports %s)", session.id, placed.worker_id,
                        decision.reason, placed.allocated_ports)
            self._on_scheduled(session.id)
            return

    async def _still_pending(self, session_id: str) -> bool:
        try:
            return (await self._gateway.session(session_id)).status is LabletSessionStatus.PENDING
        except NotFoundError:
            return False

    async def _record_no_candidate(self, session: SessionWorkView, decision: Decision) -> None:
        """Records "no candidate" (or "waiting for pool P") on the session, unless its reason is already there."""
        if session.pending_reason == decision.reason:
            return
        try:
            await self._gateway.schedule(session.id, None, to_contract(decision))
        except (ConflictError, NotFoundError) as exc:
            logger.info("session %s: could not record 'no candidate' (%s)", session.id, exc.message)
        else:
            logger.info("session %s stays pending: %s", session.id, decision.reason)
