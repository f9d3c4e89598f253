"""A session's reconcile is one span named by its step, carrying the session and its worker (the real CML
simulator, the in-memory control plane of conftest.py); a scheduling pass a span with one per session."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lablet_controller.application.scheduling import SchedulingPass
from lablet_controller.domain.scheduling import Scheduler
from lcm_core import tracing
from lcm_core.domain.lablets import LabletSessionStatus as S
from tests.fixtures.tracing import context_of, traced
from tests.lablet_controller.application.test_scheduling_pass import setup as pending_sessions_and
from tests.lablet_controller.application.test_scheduling_pass import worker


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


async def test_a_scheduling_pass_is_a_span_with_one_child_per_session_placed_or_not() -> None:
    _cp, gateway = pending_sessions_and(worker("big", 6), sessions=3)  # room for two sessions of 3 cores
    exporter = InMemorySpanExporter()
    with traced(SimpleSpanProcessor(exporter)):
        await SchedulingPass(gateway, Scheduler("best_fit"), port_capacity=100).run_once()
    spans = exporter.get_finished_spans()
    (pass_span,) = (s for s in spans if s.name == "sessions.schedule")
    assert dict(pass_span.attributes or {}) == {"lcm.sessions.pending": 3, "lcm.sessions.scheduled": 2}
    placements = [s for s in spans if s.name == "session.place"]
    assert {s.parent.span_id for s in placements if s.parent} == {context_of(pass_span).span_id}
    assert {s.attributes[tracing.SESSION_ID]: s.attributes.get(tracing.WORKER_ID)
            for s in placements if s.attributes} == {"s0": "big", "s1": "big", "s2": None}
