"""The lablet contract shared by the control-plane API and the lablet-controller (docs/lablets.md).

Enums, the session transition table, port-tag naming (`serial:5041` on node `PC` is port `PC_serial`),
the observation value objects, and the bodies and views of the internal lablet endpoints. No I/O.

Models the CPA reads from a controller are strict (`extra="forbid"`), except the node and interface
observations, which carry what CML returned and ignore what they do not name. Views the controller reads
from the CPA ignore unknown fields, so that the CPA may add fields without breaking a controller.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lcm_core.domain.types import Flag, Instant, Integer, JsonObject, Label, Number, Text


class LabletSessionStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    INSTANTIATING = "instantiating"
    READY = "ready"
    RUNNING = "running"
    COLLECTING = "collecting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ARCHIVED = "archived"
    TERMINATED = "terminated"
    EXPIRED = "expired"


class LabletDefinitionStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    INACTIVE = "inactive"
    DEPRECATED = "deprecated"
    ARCHIVED = "archived"


class SchedulingStrategy(StrEnum):
    BEST_FIT = "best_fit"
    LEAST_UTILIZED = "least_utilized"
    LEAST_LABS = "least_labs"
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"


S = LabletSessionStatus

#: The explicit session lifecycle (docs/lablets.md). Anything not listed is refused (HTTP 409).
SESSION_TRANSITIONS: dict[LabletSessionStatus, frozenset[LabletSessionStatus]] = {
    S.PENDING: frozenset({S.SCHEDULED, S.TERMINATED, S.EXPIRED}),
    # back to pending = unschedule (the worker could not take it after all): capacity and ports released.
    S.SCHEDULED: frozenset({S.INSTANTIATING, S.PENDING, S.TERMINATED, S.EXPIRED}),
    # stopping = instantiation failed or the timeslot ended first: the partial lab is torn down.
    S.INSTANTIATING: frozenset({S.READY, S.STOPPING, S.TERMINATED}),
    S.READY: frozenset({S.RUNNING, S.COLLECTING, S.STOPPING, S.TERMINATED}),
    S.RUNNING: frozenset({S.COLLECTING, S.STOPPING, S.TERMINATED}),
    S.COLLECTING: frozenset({S.STOPPING, S.TERMINATED}),
    S.STOPPING: frozenset({S.STOPPED, S.TERMINATED}),
    S.STOPPED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
    S.TERMINATED: frozenset(),
    S.EXPIRED: frozenset(),
}

TERMINAL_SESSION_STATUSES = frozenset({S.ARCHIVED, S.TERMINATED, S.EXPIRED})
#: Entering one of these releases the session's capacity and ports on its worker (exactly once).
RELEASING_SESSION_STATUSES = frozenset({S.STOPPED, S.TERMINATED, S.EXPIRED})
#: Statuses in which a session holds capacity and ports on a worker.
HOLDING_SESSION_STATUSES = frozenset({S.SCHEDULED, S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.STOPPING})
#: Statuses in which a lab may exist on CML (the controller owns its teardown).
LAB_SESSION_STATUSES = frozenset({S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING, S.STOPPING})
#: Statuses in which an operator may ask for a resource observation now (the manual trigger).
OBSERVABLE_SESSION_STATUSES = frozenset({S.READY, S.RUNNING})
#: Statuses that expire when the timeslot ends before a lab exists.
EXPIRABLE_SESSION_STATUSES = frozenset({S.PENDING, S.SCHEDULED})


def can_transition(current: LabletSessionStatus | str, to: LabletSessionStatus | str) -> bool:
    """Whether the table allows `current → to` (staying in place is not a transition)."""
    return LabletSessionStatus(to) in SESSION_TRANSITIONS[LabletSessionStatus(current)]


def releases_capacity(current: LabletSessionStatus | str, to: LabletSessionStatus | str) -> bool:
    """Whether `current → to` gives the worker's capacity and ports back (stopped/terminated/expired, or
    unscheduling back to pending)."""
    current, to = LabletSessionStatus(current), LabletSessionStatus(to)
    return current in HOLDING_SESSION_STATUSES and (to in RELEASING_SESSION_STATUSES or to is S.PENDING)


# ---------------------------------------------------------------------------------------------- ports

#: Node-tag kinds that declare a port (each session gets its own): `serial:5041`, `vnc:5044`, ...
PORT_TAG_KINDS = frozenset({"serial", "vnc", "ssh", "telnet", "http", "https", "rdp"})
_PORT_TAG = re.compile(r"^([a-z]+):(\d{1,5})$")


def parse_port_tag(tag: str) -> tuple[str, int] | None:
    """`"serial:5041"` → `("serial", 5041)`; anything else (other tags, a port outside 1..65535) → None."""
    match = _PORT_TAG.match(tag.strip()) if isinstance(tag, str) else None
    if match is None or match.group(1) not in PORT_TAG_KINDS:
        return None
    port = int(match.group(2))
    return (match.group(1), port) if 1 <= port <= 65535 else None


def port_name(node_label: str, kind: str) -> str:
    """A port's name, by which ports are allocated, observed and compared: node label and tag kind (`PC_serial`)."""
    return f"{node_label}_{kind}"


def _storable_key(value: str) -> str:
    if value.startswith("$") or "." in value:
        raise ValueError(f"name {value[:40]!r} may not start with '$' or contain '.'")
    return value


PortName = Annotated[Label, Field(min_length=1, max_length=160), AfterValidator(_storable_key)]
Port = Annotated[int, Field(ge=1, le=65535)]
Identifier = Annotated[Label, Field(min_length=1, max_length=128), AfterValidator(_storable_key)]
TrackName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
"""A lab track's name (a definition's, a worker's, a pool's)."""
PortMap = Annotated[dict[PortName, Port], Field(max_length=500)]


class PortSpec(BaseModel):
    """One entry of a definition's `port_template`: a node tag that asks for a port."""

    model_config = ConfigDict(extra="ignore")

    name: PortName
    node_label: Label
    kind: str
    template_port: Port
    """The port written in the topology's tag; the scheduler allocates a free one per session."""


class ResourceRequirements(BaseModel):
    """What one session of a definition reserves on its worker."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    cpu_cores: Number = Field(default=0, ge=0, le=10_000)
    memory_gb: Number = Field(default=0, ge=0, le=100_000)
    storage_gb: Number = Field(default=0, ge=0, le=1_000_000)
    node_count: Integer = Field(default=0, ge=0, le=10_000)
    """Nodes that count against the worker's `max_nodes` (external connectors and unmanaged switches don't)."""


# ---------------------------------------------------------------------------------------------- observation

class InterfaceObservation(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    interface_id: Label
    label: Label
    slot: Integer | None = Field(default=None, ge=0, le=10_000)
    state: Label
    mac_address: Label | None = None
    ip4: list[Label] = Field(default_factory=list, max_length=64)


class NodeObservation(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    node_id: Label
    label: Label
    node_definition: Label
    state: Label
    cpu_limit: Integer | None = Field(default=None, ge=0, le=100_000)
    ram_mb: Integer | None = Field(default=None, ge=0, le=100_000_000)
    tags: list[Label] = Field(default_factory=list, max_length=100)
    interfaces: list[InterfaceObservation] = Field(default_factory=list, max_length=256)


class ResourceObservation(BaseModel):
    """What the lablet-controller saw of a live lab (POSTed to the CPA; docs/lablet-controller.md, 'Observation')."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    observed_at: Instant
    observer: Literal["lablet-controller", "manual"]
    total_cpu_cores: Number = Field(ge=0, le=100_000)
    total_memory_mb: Integer = Field(ge=0, le=1_000_000_000)
    total_storage_mb: Integer | None = Field(default=None, ge=0, le=1_000_000_000_000)
    nodes: list[NodeObservation] = Field(default_factory=list, max_length=1000)
    actual_node_count: Integer = Field(ge=0, le=100_000)
    node_definitions_used: list[Label] = Field(default_factory=list, max_length=200)
    observed_ports: PortMap = Field(default_factory=dict)
    simulation_stats: JsonObject | None = None
    request_id: Label | None = Field(default=None, max_length=64)
    """The id of the manual request this answers (from the etcd key), if any."""


def observed_ports_from_nodes(nodes: list[NodeObservation]) -> dict[str, int]:
    """The ports named by the nodes' tags, by port name (what a controller puts in `observed_ports`)."""
    found: dict[str, int] = {}
    for node in nodes:
        for tag in node.tags:
            parsed = parse_port_tag(tag)
            if parsed is not None:
                found[port_name(node.label, parsed[0])] = parsed[1]
    return found


# ---------------------------------------------------------------------------------------------- scheduling

class SchedulingDecision(BaseModel):
    """What the scheduler decided for one session (docs/lablet-controller.md, 'Scheduling'), kept on the session."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    success: Flag
    worker_id: Identifier | None = None
    reason: Annotated[Text, Field(max_length=1000)]
    strategy: SchedulingStrategy = SchedulingStrategy.BEST_FIT
    candidates_evaluated: Integer = Field(default=0, ge=0, le=1_000_000)
    latency_ms: Number = Field(default=0, ge=0, le=86_400_000)
    scores: dict[Identifier, float] = Field(default_factory=dict, max_length=5000)
    waiting_for_pool: Identifier | None = None
    """No worker fits and the session's track has a pool that can grow: the pool was asked to scale up and
    the session waits for its capacity (it stays pending)."""


class ScheduleRequest(BaseModel):
    """`worker_id` None: no candidate fits; the session stays pending and the CPA records the reason."""

    model_config = ConfigDict(extra="forbid")

    worker_id: Identifier | None
    decision: SchedulingDecision


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: LabletSessionStatus
    reason: Annotated[Text, Field(min_length=1, max_length=1000)]
    error: Text | None = Field(default=None, max_length=2000)


class MarkReadyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cml_lab_id: Identifier


class SessionWorkView(BaseModel):
    """The brief session shape the lablet-controller reads (`GET /api/internal/lablet-sessions`)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: LabletSessionStatus
    version: Integer
    definition_id: str
    definition_version: Integer
    worker_id: str | None = None
    cml_lab_id: str | None = None
    allocated_ports: dict[str, int] = Field(default_factory=dict)
    timeslot_start: Instant
    timeslot_end: Instant
    resource_requirements: ResourceRequirements
    lab_track: str | None = None
    license_affinity: list[str] = Field(default_factory=list)
    pending_reason: str | None = None
    observe_requested: Flag = False
    observe_request_id: str | None = None
    terminate_requested: Flag = False
    """An operator terminated a session with a lab: tear it down, then transition to `terminated`."""
    status_changed_at: Instant | None = None
    """When the session entered `status` (the control plane's clock): a new leader resumes a deadline, such as
    the boot timeout, from here instead of starting it again."""


class DefinitionWorkView(BaseModel):
    """A definition version as the lablet-controller reads it (`GET /api/internal/lablet-definitions/{id}`)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    version: Integer
    status: LabletDefinitionStatus
    lab_topology_yaml: str
    port_template: list[PortSpec] = Field(default_factory=list)
    resource_requirements: ResourceRequirements
    lab_track: str | None = None
    license_affinity: list[str] = Field(default_factory=list)
    max_duration_minutes: Integer


class SessionStateKey(BaseModel):
    """Value of the etcd key `{prefix}/sessions/{id}/state`, written after every session commit."""

    model_config = ConfigDict(extra="ignore")

    session_id: str
    status: LabletSessionStatus
    version: Integer
    worker_id: str | None = None
    cml_lab_id: str | None = None
    terminate_requested: Flag = False


class ObserveRequestKey(BaseModel):
    """Value of the etcd key `{prefix}/sessions/{id}/observe_resources` (an operator's request to observe now)."""

    model_config = ConfigDict(extra="ignore")

    session_id: str
    request_id: str
    requested_by: str
    requested_at: Instant
