"""What the lablet-controller's use cases need of the world, as small Protocols (ports).

The scheduling pass, the session reconciler, the observer and lab discovery depend on these, never on the
control plane's HTTP client or on the CML lab adapter; the composition root (`main`) wires the adapters of
`infrastructure` (`LabletGateway`, `CmlLabs`) to them, and the tests wire an in-memory control plane (and
`CmlLabs` over the CML simulator or respx). Each Protocol names only the methods its users call. The control
plane's refusals are `lcm_core.errors` (`NotFoundError`, `ConflictError` when a session moved on,
`UnavailableError`); CML's are `lcm_core.cml.CmlError`. Every change to a lab passes the leader fence right
before it is sent, after the caller's `before` hook.
"""

from __future__ import annotations

from typing import Protocol

from lablet_controller.domain.labs import BeforeChange, BootState, LabReadings
from lcm_core.domain.lablets import (
    DefinitionWorkView,
    LabletSessionStatus,
    ResourceObservation,
    SchedulingDecision,
    SessionWorkView,
)
from lcm_core.domain.pools import PoolView
from lcm_core.domain.workers import WorkerSummary

# ----------------------------------------------------------------- the control plane


class SessionReads(Protocol):
    """Lablet sessions as the control plane has them now."""

    async def sessions(self, *statuses: LabletSessionStatus) -> list[SessionWorkView]: ...

    async def session(self, session_id: str, /) -> SessionWorkView: ...


class DefinitionReads(Protocol):
    async def definition(self, definition_id: str, version: int, /) -> DefinitionWorkView:
        """A version of a lablet definition (immutable once stored)."""
        ...


class WorkerRows(Protocol):
    async def workers(self) -> list[WorkerSummary]:
        """Every live worker's row (state, licence, track and capacity)."""
        ...


class PoolReads(Protocol):
    async def pools(self) -> list[PoolView]:
        """Every pool that is not terminated (one per lab track), with its scaling bounds and capacity."""
        ...


class ObservationReports(Protocol):
    async def report_observation(self, session_id: str, observation: ResourceObservation, /) -> SessionWorkView:
        """Records a resource observation of a session's lab; answers the session as it is now."""
        ...


class SchedulingGateway(SessionReads, DefinitionReads, WorkerRows, PoolReads, Protocol):
    """The scheduling pass's side of the control plane: the pending sessions, their definitions, the workers,
    the pools, and the reservation (or the "no candidate" decision, possibly waiting for a pool) of a session."""

    async def schedule(self, session_id: str, worker_id: str | None, decision: SchedulingDecision, /
                       ) -> SessionWorkView: ...


class SessionLifecycle(SessionReads, DefinitionReads, Protocol):
    """The session reconciler's side of the control plane: the sessions, their definitions, and the lifecycle
    commands (each answers the session as it is now)."""

    async def transition(self, session_id: str, to: LabletSessionStatus, reason: str, error: str | None = None, /
                         ) -> SessionWorkView: ...

    async def mark_ready(self, session_id: str, cml_lab_id: str, /) -> SessionWorkView: ...


class LabOwners(SessionReads, WorkerRows, Protocol):
    """Lab discovery's side of the control plane: the running workers, and the sessions that hold them."""


# ----------------------------------------------------------------- labs on CML


class LabHosts(Protocol):
    async def host(self, worker_id: str, /) -> str:
        """A worker's CML base URL (`NotFoundError` if the worker is gone, `CmlError` if it has no address yet)."""
        ...


class LabReader(LabHosts, Protocol):
    """Reads a session's lab for a resource observation."""

    async def read_for_observation(self, host: str, lab_id: str, /) -> LabReadings: ...


class LabTeardown(Protocol):
    async def tear_down(self, host: str, lab_id: str, before: BeforeChange | None = None, /) -> None:
        """Stops, wipes and deletes a lab; one already gone (or already stopped or wiped) is fine."""
        ...


class SessionLabs(LabHosts, LabTeardown, Protocol):
    """The session reconciler's lab operations on CML, each idempotent: a session's lab is found by id or by
    title, imported and started, followed while it boots, and torn down."""

    async def lab_exists(self, host: str, lab_id: str, /) -> bool: ...

    async def find_lab(self, host: str, title: str, /) -> str | None: ...

    async def import_and_start(self, host: str, topology_yaml: str, title: str,
                               before: BeforeChange | None = None, /) -> str: ...

    async def ensure_started(self, host: str, lab_id: str, before: BeforeChange | None = None, /) -> None: ...

    async def boot_state(self, host: str, lab_id: str, /) -> BootState: ...


class LabSweep(LabTeardown, Protocol):
    """Lab discovery's operations on CML: the titles of a host's labs, and the teardown of an orphan."""

    async def lab_titles(self, host: str, /) -> dict[str, str]: ...

