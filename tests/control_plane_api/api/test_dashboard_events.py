"""The dashboard's event stream client listens for every worker, pool and lablet event the CPA emits (an
EventSource only delivers named events it registered a listener for), and the stream's type filter passes
them."""

from __future__ import annotations

import re

from control_plane_api.api.dashboard import STATIC_DIR
from control_plane_api.application.event_relay import EventFilter
from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent


def _types(prefix: str) -> list[str]:
    return sorted(v for k, v in vars(ev).items() if k.startswith(prefix) and isinstance(v, str))


LABLET_TYPES = _types("LABLET_")


def _listed() -> set[str]:
    source = (STATIC_DIR / "js" / "live.js").read_text()
    return set(re.findall(r'"([a-z_.]+)"', source.split("const TYPES = [", 1)[1].split("];", 1)[0]))


def test_live_js_registers_every_lablet_event_type() -> None:
    assert len(LABLET_TYPES) >= 15
    assert "lablet.session.port_drift.detected" in LABLET_TYPES
    assert [t for t in LABLET_TYPES if t not in _listed()] == []


def test_live_js_registers_every_worker_and_pool_event_type() -> None:
    """Pool pages redraw from `pool.*` events and from the worker events a pool causes (a worker joins or
    leaves it, is drained when the pool retires it)."""
    worker_types, pool_types = _types("WORKER_"), _types("POOL_")
    assert {"worker.pool.changed", "worker.draining"} <= set(worker_types)
    assert {"pool.created", "pool.scaled", "pool.terminated"} <= set(pool_types)
    assert [t for t in worker_types + pool_types if t not in _listed()] == []


def test_the_stream_filter_passes_lablet_events_by_prefix() -> None:
    drift = DomainEvent(type=ev.LABLET_SESSION_PORT_DRIFT_DETECTED, subject_id="s1", data={})
    assert EventFilter().matches(drift)
    assert EventFilter(event_types=frozenset({"lablet.*"})).matches(drift)
    assert EventFilter(event_types=frozenset({"lablet.session.*"})).matches(drift)
    assert not EventFilter(event_types=frozenset({"worker.*"})).matches(drift)
