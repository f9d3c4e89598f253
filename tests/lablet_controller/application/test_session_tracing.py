"""A session's reconcile is one span named by its step, carrying the session and its worker (the real CML
simulator, the in-memory control plane of conftest.py)."""

from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lcm_core import tracing
from lcm_core.domain.lablets import LabletSessionStatus as S
from tests.fixtures.tracing import traced


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
