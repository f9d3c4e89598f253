"""SessionReconciler: the lab lifecycle of one session on CML, level-triggered and idempotent.

Each reconcile reads the session from the CPA, asks the domain for the next step (`next_step`), carries it
out and answers done / come back after t; an exception makes the loop back off for that session only
(`lcm_core.leader.ReconcileLoop`, which also guarantees one reconcile per session at a time).

scheduled → import the topology with the allocated ports in its node tags, start → instantiating
instantiating → poll until every node is BOOTED and the lab converged → mark-ready (timeout: → stopping)
ready → running when the timeslot starts; running past the end → observe (best-effort) → collecting →
stopping → stop, wipe, delete → stopped (or terminated after an operator's terminate).

Failures: CML errors while instantiating are retried with backoff; after `max_attempts` the session is
marked with the error (scheduled → terminated once its partial lab is gone, instantiating → stopping and
torn down). Teardown never gives up: it is retried until the lab is gone or reported gone (404).

Fenced changes: every change to CML goes through `CmlLabs`, which checks the leader fence immediately before
the request; `LeadershipLost` is never caught here, so the reconcile fails and the loop backs off for that
session while the election sorts out who leads. A step is also never carried out on a stale decision: when
the session was read longer than the fence margin before a change (CML calls can be slow), it is read again
first, and if anybody changed it meanwhile the step is dropped and the reconcile decides again from the
fresh view (`SessionChanged`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from opentelemetry import trace

from lablet_controller.application.observer import LabObserver
from lablet_controller.application.ports import SessionLabs, SessionLifecycle
from lablet_controller.domain.labs import BeforeChange
from lablet_controller.domain.sessions import Step, lab_title, next_step, seconds_until_next_deadline
from lcm_core import tracing
from lcm_core.cml import CmlError
from lcm_core.domain.lablet_topology import TopologyError, with_allocated_ports
from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.domain.lablets import SessionWorkView
from lcm_core.errors import ConflictError, LcmError, NotFoundError
from lcm_core.leader.fence import Fence, LeadershipLost
from lcm_core.leader.loops import ReconcileResult

logger = logging.getLogger(__name__)

#: Statuses the periodic resync reconciles (pending sessions go to the scheduling pass instead).
ACTIVE = (S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.STOPPING)


class SessionChanged(Exception):
    """The session changed (or vanished) since the step was decided: decide again from a fresh read."""


class SessionReconciler:
    def __init__(self, gateway: SessionLifecycle, labs: SessionLabs, observer: LabObserver, *,
                 boot_timeout_seconds: float, boot_poll_seconds: float, max_attempts: int,
                 resync_interval: float, fence: Fence, trigger_scheduling: Callable[[], None] = lambda: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._gateway = gateway
        self._fence = fence
        self._monotonic = monotonic
        self._labs = labs
        self._observer = observer
        self._boot_timeout = boot_timeout_seconds
        self._boot_poll = boot_poll_seconds
        self._max_attempts = max_attempts
        self._resync = resync_interval
        self._trigger_scheduling = trigger_scheduling
        self._clock = clock
        self._lab_ids: dict[str, str] = {}
        self._boot_started: dict[str, datetime] = {}
        self._failures: Counter[tuple[str, str]] = Counter()
        self._cleaned: set[str] = set()
        self._views: dict[str, tuple[SessionWorkView, float]] = {}
        """Session id → the latest view this reconcile holds and when it was read (monotonic), while the
        reconcile runs: what a change to CML is decided from."""
        self.actions: Counter[str] = Counter()
        self.by_status: dict[str, int] = {}

    # ------------------------------------------------------------------ resync

    async def list_keys(self) -> list[str]:
        """Every session that may need work; pending ones wake the scheduling pass instead."""
        sessions = await self._gateway.sessions(S.PENDING, *ACTIVE)
        self.by_status = dict(Counter(s.status.value for s in sessions))
        if any(s.status is S.PENDING for s in sessions):
            self._trigger_scheduling()
        return [s.id for s in sessions if s.status is not S.PENDING]

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, session_id: str) -> ReconcileResult:
        """One reconcile, one trace: a `session.<step>` span (`session.instantiate`, `session.await_boot`...)
        whose control-plane calls carry it on (docs/tracing.md)."""
        with tracing.tracer().start_as_current_span("session.reconcile") as span:
            span.set_attribute(tracing.SESSION_ID, session_id)
            return await self._reconcile_traced(session_id)

    async def _reconcile_traced(self, session_id: str) -> ReconcileResult:
        try:
            session = await self._gateway.session(session_id)
        except NotFoundError:
            self._forget(session_id)
            return ReconcileResult.done()
        self._hold(session)
        try:
            return await self._reconcile(session)
        except SessionChanged as exc:
            logger.info("session %s: %s; deciding again", session_id, exc)
            return ReconcileResult.requeue(0)
        finally:
            self._views.pop(session_id, None)

    async def _reconcile(self, session: SessionWorkView) -> ReconcileResult:
        session_id = session.id
        now = self._clock()
        step = next_step(session, now)
        span = trace.get_current_span()
        span.update_name(f"session.{step.value}")
        span.set_attribute("lcm.session.status", session.status.value)
        if session.worker_id is not None:
            span.set_attribute(tracing.WORKER_ID, session.worker_id)
        handler = {
            Step.SCHEDULE: self._schedule, Step.INSTANTIATE: self._instantiate, Step.AWAIT_BOOT: self._await_boot,
            Step.START_RUNNING: self._start_running, Step.WAIT_TIMESLOT: self._wait, Step.OBSERVE: self._observe,
            Step.COLLECT: self._collect, Step.TEAR_DOWN: self._tear_down, Step.ABANDON: self._abandon,
            Step.CLEAN_UP: self._clean_up, Step.EXPIRE: self._expire,
        }.get(step)
        if handler is None:
            self._forget(session_id)
            return ReconcileResult.done()
        try:
            return await handler(session)
        except ConflictError as exc:  # the session moved on meanwhile: read it again
            logger.info("session %s: %s refused (%s); re-reading", session_id, step.value, exc.message)
            return ReconcileResult.requeue(0.5)

    async def _transition(self, session: SessionWorkView, to: S, reason: str,
                          error: str | None = None) -> SessionWorkView:
        """Ask the CPA to move the session; the answer is the session as it is now."""
        updated = await self._gateway.transition(session.id, to, reason, error)
        self._hold(updated)
        self.actions[f"to_{to.value}"] += 1
        logger.info("session %s: %s → %s (%s)", session.id, session.status.value, to.value, error or reason)
        return updated

    def _hold(self, session: SessionWorkView) -> None:
        """A view just read from (or answered by) the control plane: what the next changes are decided from."""
        self._views[session.id] = (session, self._monotonic())

    def _before_change(self, session_id: str) -> BeforeChange:
        """The check `CmlLabs` runs before each change of this session's lab: a view older than the fence
        margin is read again, and a session that changed meanwhile stops the step (`SessionChanged`)."""
        async def check(action: str) -> None:
            held, read_at = self._views[session_id]
            if self._monotonic() - read_at <= self._fence.margin_seconds:
                return
            try:
                current = await self._gateway.session(session_id)
            except NotFoundError as exc:
                raise SessionChanged(f"the session is gone; not going to {action}") from exc
            self._hold(current)
            if current.version != held.version:
                raise SessionChanged(f"the session changed (version {held.version} → {current.version}, "
                                     f"{current.status.value}) before it could {action}")
        return check

    async def _lab_id(self, session: SessionWorkView, host: str) -> str | None:
        """The session's lab on its worker: known id (still there), else found by title, else None."""
        for candidate in (self._lab_ids.get(session.id), session.cml_lab_id):
            if candidate and await self._labs.lab_exists(host, candidate):
                return candidate
        found = await self._labs.find_lab(host, lab_title(session.id))
        if found is not None:
            self._lab_ids[session.id] = found
        return found

    async def _failed_attempt(self, session: SessionWorkView, exc: Exception) -> ReconcileResult:
        """Count a failure of this session in this status; give up after `max_attempts` (else back off)."""
        key = (session.id, session.status.value)
        self._failures[key] += 1
        permanent = isinstance(exc, TopologyError | NotFoundError) and not isinstance(exc, CmlError)
        if self._failures[key] < self._max_attempts and not permanent:
            raise exc
        error = f"{session.status.value} failed after {self._failures[key]} attempts: {exc}"
        logger.error("session %s: %s", session.id, error)
        if session.status is S.SCHEDULED:
            await self._remove_lab(session)  # raises until the partial lab is gone
            await self._transition(session, S.TERMINATED, "instantiation failed", error)
        else:
            await self._transition(session, S.STOPPING, "instantiation failed", error)
        del self._failures[key]
        return ReconcileResult.requeue(0)

    # ------------------------------------------------------------------ steps

    async def _schedule(self, session: SessionWorkView) -> ReconcileResult:
        self._trigger_scheduling()
        return ReconcileResult.done()

    async def _instantiate(self, session: SessionWorkView) -> ReconcileResult:
        assert session.worker_id is not None, "a scheduled session has a worker"
        try:
            host = await self._labs.host(session.worker_id)
            lab_id = await self._lab_id(session, host)
            if lab_id is None:
                definition = await self._gateway.definition(session.definition_id, session.definition_version)
                title = lab_title(session.id)
                topology = with_allocated_ports(definition.lab_topology_yaml, session.allocated_ports, title=title)
                lab_id = await self._labs.import_and_start(host, topology, title, self._before_change(session.id))
                self.actions["import"] += 1
            else:
                await self._labs.ensure_started(host, lab_id, self._before_change(session.id))
        except (CmlError, TopologyError, NotFoundError) as exc:
            return await self._failed_attempt(session, exc)
        self._lab_ids[session.id] = lab_id
        self._boot_started[session.id] = self._clock()
        await self._transition(session, S.INSTANTIATING, f"lab {lab_id} imported and started")
        return ReconcileResult.requeue(self._boot_poll)

    async def _await_boot(self, session: SessionWorkView) -> ReconcileResult:
        assert session.worker_id is not None, "an instantiating session has a worker"
        # Measured from when the control plane recorded `instantiating`: a leader that took over mid-boot
        # keeps the original deadline. Without that time, from when this replica first waited.
        started = session.status_changed_at or self._boot_started.setdefault(session.id, self._clock())
        try:
            host = await self._labs.host(session.worker_id)
            lab_id = await self._lab_id(session, host)
            if lab_id is None:  # gone (deleted behind our back, or lost before a restart): build it again
                return await self._instantiate_again(session, host)
            state = await self._labs.boot_state(host, lab_id)
        except (CmlError, NotFoundError) as exc:
            return await self._failed_attempt(session, exc)
        if state.done:
            await self._gateway.mark_ready(session.id, lab_id)
            self.actions["to_ready"] += 1
            self._boot_started.pop(session.id, None)
            self._failures.pop((session.id, session.status.value), None)
            logger.info("session %s: lab %s booted (%d nodes); ready", session.id, lab_id, state.total)
            return ReconcileResult.requeue(0)
        waited = (self._clock() - started).total_seconds()
        if waited > self._boot_timeout:
            self._boot_started.pop(session.id, None)
            error = (f"lab {lab_id} did not boot within {self._boot_timeout:.0f}s "
                     f"({state.booted}/{state.total} nodes BOOTED, converged={state.converged})")
            await self._transition(session, S.STOPPING, "boot timeout", error)
            return ReconcileResult.requeue(0)
        return ReconcileResult.requeue(self._boot_poll)

    async def _instantiate_again(self, session: SessionWorkView, host: str) -> ReconcileResult:
        definition = await self._gateway.definition(session.definition_id, session.definition_version)
        title = lab_title(session.id)
        topology = with_allocated_ports(definition.lab_topology_yaml, session.allocated_ports, title=title)
        self._lab_ids[session.id] = await self._labs.import_and_start(host, topology, title,
                                                                      self._before_change(session.id))
        self.actions["reimport"] += 1
        return ReconcileResult.requeue(self._boot_poll)

    async def _expire(self, session: SessionWorkView) -> ReconcileResult:
        await self._remove_lab(session)  # one imported just before the slot ended, if any
        await self._transition(session, S.EXPIRED, "timeslot ended before the lab was built")
        self._forget(session.id)
        return ReconcileResult.done()

    async def _start_running(self, session: SessionWorkView) -> ReconcileResult:
        await self._transition(session, S.RUNNING, "timeslot started")
        return ReconcileResult.requeue(0)

    async def _wait(self, session: SessionWorkView) -> ReconcileResult:
        return ReconcileResult.requeue(min(self._resync, seconds_until_next_deadline(session, self._clock()) + 0.05))

    async def _observe(self, session: SessionWorkView) -> ReconcileResult:
        """An operator's request to observe now: observe and post; a failure backs off and is retried while the
        request stands, at most `max_attempts` times."""
        key = (session.id, f"observe:{session.observe_request_id}")
        if self._failures[key] >= self._max_attempts:
            return await self._wait(session)
        lab_id = session.cml_lab_id or self._lab_ids.get(session.id)
        try:
            if lab_id is None:
                raise LcmError(f"session {session.id} has no lab to observe")
            await self._observer.observe_and_report(session, lab_id, "manual")
        except LcmError:
            self._failures[key] += 1
            self._observer.failed += 1
            raise
        self._failures.pop(key, None)
        return await self._wait(session)

    async def _collect(self, session: SessionWorkView) -> ReconcileResult:
        """End of the timeslot: observe first (the nodes are still up), → collecting, record it, → stopping."""
        observation = await self._observer.observe_quietly(session, session.cml_lab_id or self._lab_ids.get(session.id))
        collecting = await self._transition(session, S.COLLECTING, "timeslot ended")
        await self._observer.report_quietly(session.id, observation)
        await self._transition(collecting, S.STOPPING, "observation collected" if observation else
                               "observation skipped")
        return ReconcileResult.requeue(0)

    async def _abandon(self, session: SessionWorkView) -> ReconcileResult:
        await self._transition(session, S.STOPPING, "timeslot ended before the lab was ready",
                               "lab not ready by the end of the timeslot")
        return ReconcileResult.requeue(0)

    async def _tear_down(self, session: SessionWorkView) -> ReconcileResult:
        if session.status is S.COLLECTING and not session.terminate_requested:  # resumed after a restart
            observation = await self._observer.observe_quietly(session, session.cml_lab_id)
            await self._observer.report_quietly(session.id, observation)
        if session.status is not S.STOPPING:
            session = await self._transition(session, S.STOPPING, "terminate requested"
                                             if session.terminate_requested else "collection done")
        try:
            await self._remove_lab(session)
        except LeadershipLost:
            raise  # not a failure of the teardown: whoever leads next does it
        except LcmError as exc:
            key = (session.id, "teardown")
            self._failures[key] += 1
            log = logger.error if self._failures[key] >= self._max_attempts else logger.warning
            log("session %s: teardown attempt %d failed (%s); retrying", session.id, self._failures[key], exc)
            raise
        final = S.TERMINATED if session.terminate_requested else S.STOPPED
        await self._transition(session, final, "lab stopped, wiped and deleted")
        self._forget(session.id)
        return ReconcileResult.done()

    async def _remove_lab(self, session: SessionWorkView) -> None:
        """Stop, wipe, delete the session's lab if there is one; a worker that is gone has no labs left."""
        if session.worker_id is None:
            return
        try:
            host = await self._labs.host(session.worker_id)
        except NotFoundError:
            logger.info("session %s: worker %s is gone, and its labs with it", session.id, session.worker_id)
            return
        lab_id = await self._lab_id(session, host)
        if lab_id is not None:
            await self._labs.tear_down(host, lab_id, self._before_change(session.id))
            self.actions["teardown"] += 1
            logger.info("session %s: lab %s stopped, wiped and deleted", session.id, lab_id)

    async def _clean_up(self, session: SessionWorkView) -> ReconcileResult:
        if session.id not in self._cleaned:
            await self._remove_lab(session)
            self._cleaned.add(session.id)
        self._forget(session.id)
        return ReconcileResult.done()

    def _forget(self, session_id: str) -> None:
        self._lab_ids.pop(session_id, None)
        self._boot_started.pop(session_id, None)
        for key in [k for k in self._failures if k[0] == session_id]:
            del self._failures[key]
