"""Pydantic models of the CML 2.9 answers used for lab operations (labs, nodes, interfaces, links, events).

They are deliberately lenient: unknown keys are kept (`extra="allow"`), nearly every field is optional,
and nothing is range-checked, because a newer CML adding a key or a host reporting an odd value must not
break lab teardown. Only the identity of each object (`id`) is required. Telemetry answers
(`system_stats`, `system_health`, `licensing`) are *not* parsed here but key by key in `parsers`, where a
bad key costs one field instead of the whole answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LabState = Literal["DEFINED_ON_CORE", "STOPPED", "STARTED"]
NodeState = Literal["DEFINED_ON_CORE", "STOPPED", "STARTED", "QUEUED", "BOOTED", "DISCONNECTED"]

ACTIVE_NODE_STATES: frozenset[str] = frozenset({"STARTED", "QUEUED", "BOOTED"})
"""Node states that count as active (virl2-client's definition)."""


class CmlModel(BaseModel):
    """Base of the response models: keep unknown keys, ignore nothing the host sent."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SystemInformation(CmlModel):
    """`GET /system_information`, the only unauthenticated read; `ready` gates "system up"."""

    version: str | None = None
    ready: bool | None = None
    allow_ssh_pubkey_auth: bool | None = None
    oui: str | None = None


class Lab(CmlModel):
    """CML's `LabResponse`. The response prefixes title/description/notes with `lab_`; the request does not."""

    id: str
    lab_title: str | None = None
    lab_description: str | None = None
    lab_notes: str | None = None
    state: str | None = None
    created: datetime | None = None
    modified: datetime | None = None
    owner: str | None = None
    owner_username: str | None = None
    owner_fullname: str | None = None
    node_count: int | None = None
    link_count: int | None = None
    effective_permissions: list[str] = Field(default_factory=list)

    @property
    def is_active(self) -> bool:
        """A lab is active when STARTED (lab state has only three values)."""
        return self.state == "STARTED"


class ImportResult(CmlModel):
    """`POST /import` → `{id, warnings}` (both keys always present; warnings may be null)."""

    id: str
    warnings: list[str] = Field(default_factory=list)

    @field_validator("warnings", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class Node(CmlModel):
    """CML's `Node` as returned with `data=true`: sizing, placement, tags and runtime state."""

    id: str
    lab_id: str | None = None
    label: str | None = None
    node_definition: str | None = None
    image_definition: str | None = None
    x: int | None = None
    y: int | None = None
    ram: int | None = None
    """Memory in MB."""
    cpus: int | None = None
    cpu_limit: int | None = None
    """Percent of the CPUs the node may use (20-100)."""
    data_volume: int | None = None
    boot_disk_size: int | None = None
    hide_links: bool | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    configuration: Any = None
    state: str | None = None
    boot_progress: str | None = None
    compute_id: str | None = None
    pinned_compute_id: str | None = None
    resource_pool: str | None = None
    serial_consoles: list[dict[str, Any]] = Field(default_factory=list)
    operational: dict[str, Any] | None = None

    @field_validator("tags", "serial_consoles", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("parameters", mode="before")
    @classmethod
    def _null_dict(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_NODE_STATES

    @property
    def is_booted(self) -> bool:
        return self.state == "BOOTED"


class Interface(CmlModel):
    """CML's `InterfaceResponse`."""

    id: str
    label: str | None = None
    lab_id: str | None = None
    node: str | None = None
    type: str | None = None
    slot: int | None = None
    mac_address: str | None = None
    is_connected: bool | None = None
    state: str | None = None
    src_udp_port: int | None = None
    dst_udp_port: int | None = None
    device_name: str | None = None
    operational: dict[str, Any] | None = None


class Link(CmlModel):
    """CML's `Link`; its schema requires no key, but we need the id."""

    id: str
    lab_id: str | None = None
    label: str | None = None
    state: str | None = None
    interface_a: str | None = None
    interface_b: str | None = None
    node_a: str | None = None
    node_b: str | None = None
    link_capture_key: str | None = None


class NodeRuntimeStats(CmlModel):
    """Per-node entry of `simulation_stats`; missing counters count as 0 (as virl2-client does)."""

    cpu_usage: float = 0.0
    block0_rd_bytes: int = 0
    block0_wr_bytes: int = 0

    @field_validator("cpu_usage", "block0_rd_bytes", "block0_wr_bytes", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value


class LinkRuntimeStats(CmlModel):
    """Per-link entry of `simulation_stats` (interface B's counters mirror these)."""

    readbytes: int = 0
    readpackets: int = 0
    writebytes: int = 0
    writepackets: int = 0

    @field_validator("readbytes", "readpackets", "writebytes", "writepackets", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value


def _keyed_by_id(value: Any) -> Any:
    """Accept the spec's array form (`[{id, ...}]`) as well as the client's object form (`{id: {...}}`)."""
    if value is None:
        return {}
    if isinstance(value, list):
        return {item["id"]: item for item in value if isinstance(item, dict) and isinstance(item.get("id"), str)}
    return value


class SimulationStats(CmlModel):
    """`GET /labs/{id}/simulation_stats`, normalised to objects keyed by node / link id."""

    nodes: dict[str, NodeRuntimeStats] = Field(default_factory=dict)
    links: dict[str, LinkRuntimeStats] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            data["nodes"] = _keyed_by_id(data.get("nodes"))
            data["links"] = _keyed_by_id(data.get("links"))
        return data


class TelemetryEvent(CmlModel):
    """One entry of `GET /telemetry/events`: category, timestamp and a free-form payload."""

    category: str
    timestamp: datetime
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("data", mode="before")
    @classmethod
    def _null_dict(cls, value: Any) -> Any:
        return {} if value is None else value
