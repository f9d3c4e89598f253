"""A session's reconcile is one span named by its step, carrying the session and its worker (the real CML
simulator, the in-memory control plane of conftest.py); a scheduling pass a span with one per session it
attempts, up to a bound."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lablet_controller.application.scheduling import MAX_TRACED_PLACEMENTS, SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lcm_core import tracing
from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.domain.lablets import SchedulingDecision
from tests.fixtures.tracing import context_of, traced
from tests.lablet_controller.application.test_scheduling_pass import CountingGateway, worker
from tests.lablet_controller.application.test_scheduling_pass import setup as pending_sessions_and


async def test_instantiation_is_a_span_with_the_session_and_its_worker(harness) -> None:
    h = harness
    h.cp.add_session("s-traced", S.SCHEDULED, worker_id="w1")
    exporter = InMemorySpanExporter()
    with traced(SimpleSpanProcessor(exporter)):
        await h.reconciler.reconcile("s-traced")
        await h.drive("s-traced", S.READY)
    spans = exporter.get_finished_spans()
    instantiate = [s for s in spans if s.name == "session.instantiate"]
    assert len(instantiate) == 1
    (span,) = instantiate
    assert span.parent is None  # a reconcile is a trace of its own
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {tracing.SESSION_ID: "s-traced", tracing.WORKER_ID: "w1",
                                           "lcm.session.status": "scheduled"}
    booting = [s for s in spans if s.name == "session.await_boot"]
    assert booting
    assert {(s.attributes or {}).get(tracing.SESSION_ID) for s in booting} == {"s-traced"}
    assert {(s.attributes or {}).get("lcm.session.status") for s in booting} == {"instantiating"}


def pass_attributes(pending: int, scheduled: int, attempted: int, *, untraced: int = 0, no_candidate: int = 0
                    ) -> dict[str, int]:
    return {"lcm.sessions.pending": pending, "lcm.sessions.scheduled": scheduled,
            "lcm.sessions.attempted": attempted, "lcm.sessions.untraced": untraced,
            "lcm.sessions.no_candidate": no_candidate, "lcm.sessions.waiting_for_capacity": 0}


class TracedCalls(CountingGateway):
    """Each reservation or recorded reason is a CLIENT span, as the real gateway's call to the CPA is."""

    async def schedule(self, session_id: str, worker_id: str | None, decision: SchedulingDecision) -> Any:
        with tracing.tracer().start_as_current_span("POST schedule", kind=SpanKind.CLIENT):
            return await self._fake.schedule(session_id, worker_id, decision)


async def test_a_scheduling_pass_is_a_span_with_one_child_per_session_attempted() -> None:
    cp, _gateway = pending_sessions_and(worker("big", 6), sessions=3)  # room for two sessions of 3 cores
    scheduling = SchedulingPass(TracedCalls(cp), Scheduler("best_fit"), port_capacity=100)
    exporter = InMemorySpanExporter()
    with traced(SimpleSpanProcessor(exporter)):
        await scheduling.run_once()
    spans = exporter.get_finished_spans()
    (pass_span,) = (s for s in spans if s.name == "sessions.schedule")
    assert dict(pass_span.attributes or {}) == pass_attributes(3, 2, 3, no_candidate=1)
    placements = [s for s in spans if s.name == "session.place"]
    assert {s.parent.span_id for s in placements if s.parent} == {context_of(pass_span).span_id}
    # s2 did not fit: the pass recorded why, a call to the CPA like a reservation.
    assert {s.attributes[tracing.SESSION_ID]: s.attributes.get(tracing.WORKER_ID)
            for s in placements if s.attributes} == {"s0": "big", "s1": "big", "s2": None}
    calls = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert sorted(s.parent.span_id for s in calls if s.parent) == sorted(context_of(s).span_id for s in placements)



BACKLOG = 2500
"""Sessions waiting for capacity: a fleet's backlog after an outage."""


async def test_a_pass_over_a_backlog_traces_a_bounded_number_of_placements_and_counts_the_rest() -> None:
    cp, _gateway = pending_sessions_and(worker("small", 1), sessions=BACKLOG)  # no room for any session
    scheduling = SchedulingPass(TracedCalls(cp), Scheduler("best_fit"), port_capacity=100)
    exporter = InMemorySpanExporter()
    with traced(SimpleSpanProcessor(exporter)):
        outcome = await scheduling.run_once()
    assert outcome.scheduled == 0
    # Every session had its reason recorded, traced or not.
    assert all(session.pending_reason for session in cp.sessions.values())
    spans = exporter.get_finished_spans()
    (pass_span,) = (s for s in spans if s.name == "sessions.schedule")
    assert dict(pass_span.attributes or {}) == pass_attributes(
        BACKLOG, 0, BACKLOG, untraced=BACKLOG - MAX_TRACED_PLACEMENTS, no_candidate=BACKLOG)
    placements = [s for s in spans if s.name == "session.place"]
    oldest_first = sorted(cp.sessions.values(), key=lambda s: (s.timeslot_start, s.id))
    assert [(s.attributes or {}).get(tracing.SESSION_ID) for s in placements] == [
        s.id for s in oldest_first[:MAX_TRACED_PLACEMENTS]]
    # The calls of the untraced placements went unsampled: neither their CLIENT spans nor (through traceparent)
    # the CPA's SERVER spans join the trace.
    calls = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(calls) == MAX_TRACED_PLACEMENTS
    assert len(spans) == 1 + 2 * MAX_TRACED_PLACEMENTS

    next_pass = InMemorySpanExporter()
    with traced(SimpleSpanProcessor(next_pass)):
        await scheduling.run_once()
    # The next pass: every session waits again for the reason it already has, which costs no call and no span.
    (pass_span,) = next_pass.get_finished_spans()
    assert pass_span.name == "sessions.schedule"
    assert dict(pass_span.attributes or {}) == pass_attributes(BACKLOG, 0, 0, no_candidate=BACKLOG)
