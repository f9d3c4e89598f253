"""An in-memory control plane for the application tests (the CPA's session rules: the transition table,
the schedule reservation, mark-ready, observations), and the lablet-controller's parts wired against the
session's real CML simulator. The integration tests (tests/integration/test_lablet_controller.py) use the
real CPA instead."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lablet_controller.application.observer import LabObserver
from lablet_controller.application.reconciler import SessionReconciler
from lablet_controller.domain.sessions import Step, next_step
from lablet_controller.infrastructure.cml_labs import CmlLabs, WorkerHosts
from lcm_core.cml import CmlClient
from lcm_core.domain.lablet_topology import derive_port_template, estimate_resources, parse_topology
from lcm_core.domain.lablets import (
    DefinitionWorkView,
    LabletDefinitionStatus,
    LabletSessionStatus,
    ResourceObservation,
    SchedulingDecision,
    SessionWorkView,
    can_transition,
)
from lcm_core.domain.pools import PoolView
from lcm_core.domain.workers import WorkerSummary
from lcm_core.errors import ConflictError, NotFoundError
from lcm_core.leader.fence import AlwaysLeading
from lcm_core.leader.loops import ReconcileResult
from lcm_core.testing import sample_topologies
from tests.fixtures.cml_simulator import new_instance_id

S = LabletSessionStatus


@dataclass
class FakeControlPlane:
    """The session endpoints' rules, in memory."""

    sessions: dict[str, SessionWorkView] = field(default_factory=dict)
    definitions: dict[tuple[str, int], DefinitionWorkView] = field(default_factory=dict)
    workers_: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools_: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[str, str, str | None]] = field(default_factory=list)
    observations: list[ResourceObservation] = field(default_factory=list)
    decisions: list[SchedulingDecision] = field(default_factory=list)
    refuse_workers: set[str] = field(default_factory=set)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """Stamps `status_changed_at`, as the real control plane does with its own clock."""

    def add_definition(self, topology: str | None = None, version: int = 1) -> DefinitionWorkView:
        text = topology or sample_topologies.load()
        parsed = parse_topology(text)
        definition = DefinitionWorkView(
            id="def-1", name="ccna", version=version, status=LabletDefinitionStatus.ACTIVE, lab_topology_yaml=text,
            port_template=derive_port_template(parsed), resource_requirements=estimate_resources(parsed),
            max_duration_minutes=120)
        self.definitions[(definition.id, version)] = definition
        return definition

    def add_session(self, sid: str, status: S = S.PENDING, **kw: Any) -> SessionWorkView:
        now = datetime.now(UTC)
        definition = next(iter(self.definitions.values()))
        values: dict[str, Any] = {
            "id": sid, "status": status, "version": 1, "definition_id": definition.id, "definition_version": 1,
            "timeslot_start": now - timedelta(minutes=1), "timeslot_end": now + timedelta(hours=1),
            "resource_requirements": definition.resource_requirements}
        values.update(kw)
        self.sessions[sid] = SessionWorkView.model_validate(values)
        return self.sessions[sid]

    def _update(self, sid: str, **changes: Any) -> SessionWorkView:
        current = self.sessions[sid]
        self.sessions[sid] = current.model_copy(update={**changes, "version": current.version + 1})
        return self.sessions[sid]

    # ---- the gateway's interface ----------------------------------------------------------------

    async def sessions_(self, *statuses: S) -> list[SessionWorkView]:
        return [s for s in self.sessions.values() if not statuses or s.status in statuses]

    async def session(self, sid: str) -> SessionWorkView:
        if sid not in self.sessions:
            raise NotFoundError(sid)
        return self.sessions[sid]

    async def definition(self, definition_id: str, version: int) -> DefinitionWorkView:
        return self.definitions[(definition_id, version)]

    async def workers(self) -> list[WorkerSummary]:
        return [WorkerSummary.model_validate(w) for w in self.workers_.values()]

    async def pools(self) -> list[PoolView]:
        return [PoolView.model_validate(p) for p in self.pools_.values()]

    async def worker(self, worker_id: str) -> WorkerSummary:
        if worker_id not in self.workers_:
            raise NotFoundError(worker_id)
        return WorkerSummary.model_validate(self.workers_[worker_id])

    async def schedule(self, sid: str, worker_id: str | None, decision: SchedulingDecision) -> SessionWorkView:
        self.decisions.append(decision)
        session = self.sessions[sid]
        if session.status is not S.PENDING or worker_id in self.refuse_workers:
            raise ConflictError(f"session {sid} cannot be scheduled on {worker_id}")
        if worker_id is None:
            return self._update(sid, pending_reason=decision.reason)
        definition = self.definitions[(session.definition_id, session.definition_version)]
        ports = {spec.name: 6000 + n for n, spec in enumerate(definition.port_template)}
        self.history.append((sid, "scheduled", None))
        return self._update(sid, status=S.SCHEDULED, worker_id=worker_id, allocated_ports=ports)

    async def transition(self, sid: str, to: S, reason: str, error: str | None = None) -> SessionWorkView:
        session = self.sessions[sid]
        if session.status is to:
            return session
        if not can_transition(session.status, to):
            raise ConflictError(f"{session.status} → {to} refused")
        self.history.append((sid, to.value, error))
        return self._update(sid, status=to, status_changed_at=self.clock())

    async def mark_ready(self, sid: str, cml_lab_id: str) -> SessionWorkView:
        if self.sessions[sid].status is not S.INSTANTIATING:
            raise ConflictError("not instantiating")
        self.history.append((sid, "ready", None))
        return self._update(sid, status=S.READY, cml_lab_id=cml_lab_id)

    async def report_observation(self, sid: str, observation: ResourceObservation) -> SessionWorkView:
        self.observations.append(observation)
        return self._update(sid, observe_requested=False, observe_request_id=None)

    def statuses(self, sid: str) -> list[str]:
        return [to for s, to, _ in self.history if s == sid]


class GatewayAdapter:
    """FakeControlPlane under the gateway's method names (`sessions` is a field there)."""

    def __init__(self, fake: FakeControlPlane) -> None:
        self._fake = fake

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fake, "sessions_" if name == "sessions" else name)


@dataclass
class Harness:
    cp: FakeControlPlane
    reconciler: SessionReconciler
    observer: LabObserver
    labs: CmlLabs
    host_url: str
    instance_id: str
    now: list[datetime]

    async def drive(self, sid: str, until: S, rounds: int = 80, pause: float = 0.1) -> SessionWorkView:
        """Reconcile like the loop would (requeues honoured by polling) until the session reaches `until`."""
        import asyncio

        for _ in range(rounds):
            if self.cp.sessions[sid].status is until:
                return self.cp.sessions[sid]
            result: ReconcileResult = await self.reconciler.reconcile(sid)
            if result.requeue_after is None and next_step(self.cp.sessions[sid], self.now[0]) is Step.NOTHING:
                break
            await asyncio.sleep(pause if result.requeue_after else 0)
        assert self.cp.sessions[sid].status is until, f"stuck in {self.cp.sessions[sid].status}"
        return self.cp.sessions[sid]

    async def lab_titles(self) -> dict[str, str]:
        found = {}
        for lab_id in await self.labs.cml.lab_ids(self.host_url):
            found[(await self.labs.cml.lab(self.host_url, lab_id)).lab_title or ""] = lab_id
        return found


@pytest.fixture
async def harness(cml_simulator_clean) -> AsyncIterator[Harness]:
    sim = cml_simulator_clean
    instance_id = new_instance_id()
    cp = FakeControlPlane()
    cp.add_definition()
    cp.workers_["w1"] = {"id": "w1", "aws_instance_id": instance_id, "status": "running",
                         "service_status": "available", "health_status": "healthy",
                         "license_status": "registered",
                         "capacity": {"declared": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500,
                                                   "max_nodes": 200}}}
    gateway: Any = GatewayAdapter(cp)
    cml = CmlClient(sim.username, sim.password, verify_tls=False, timeout=5)
    labs = CmlLabs(cml, WorkerHosts(gateway.worker, f"{sim.url}/hosts/{{instance_id}}"), fence=AlwaysLeading())
    now = [datetime.now(UTC)]
    cp.clock = lambda: now[0]
    observer = LabObserver(gateway, labs, clock=lambda: now[0])
    reconciler = SessionReconciler(gateway, labs, observer, boot_timeout_seconds=10, boot_poll_seconds=0.1,
                                   max_attempts=3, resync_interval=5, fence=AlwaysLeading(), clock=lambda: now[0])
    try:
        yield Harness(cp, reconciler, observer, labs, sim.host_url(instance_id), instance_id, now)
    finally:
        await cml.aclose()
