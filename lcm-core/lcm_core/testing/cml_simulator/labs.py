"""Labs, nodes, interfaces and links of a simulated host, with the node boot state machine.

Node states follow CML: DEFINED_ON_CORE (no domain) → QUEUED → STARTED → BOOTED while running,
STOPPED once stopped (the domain and its disks remain), DEFINED_ON_CORE again after a wipe. Boot
progress is driven by the clock, not by background tasks: every request first advances the host to
"now" (`advance_node`), so a node queued at t reaches STARTED at t + boot/5 and BOOTED at t + boot.
A lab's state is derived from its nodes, with the three values CML has for labs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lcm_core.testing.cml_simulator.catalog import NodeDefinition, definition_for
from lcm_core.testing.cml_simulator.errors import CmlError, not_found

DEFINED = "DEFINED_ON_CORE"
STOPPED = "STOPPED"
STARTED = "STARTED"
QUEUED = "QUEUED"
BOOTED = "BOOTED"

ACTIVE_NODE_STATES = frozenset({QUEUED, STARTED, BOOTED})
BOOT_PROGRESS = {DEFINED: "Not running", STOPPED: "Not running", QUEUED: "Booting", STARTED: "Booting",
                 BOOTED: "Booted"}

#: Fraction of the boot time a node spends QUEUED before it is STARTED.
QUEUED_FRACTION = 0.2


@dataclass
class Interface:
    id: str
    lab_id: str
    node_id: str
    label: str
    type: str
    slot: int | None
    mac_address: str | None = None
    operational_mac: str | None = None
    src_udp_port: int | None = None
    dst_udp_port: int | None = None
    device_name: str | None = None
    link_id: str | None = None

    @property
    def is_connected(self) -> bool:
        return self.link_id is not None


@dataclass
class Node:
    id: str
    lab_id: str
    label: str
    node_definition: str
    x: int = 0
    y: int = 0
    image_definition: str | None = None
    ram: int | None = None
    cpus: int | None = None
    cpu_limit: int | None = None
    data_volume: int | None = None
    boot_disk_size: int | None = None
    hide_links: bool = False
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    configuration: list[dict[str, str]] = field(default_factory=list)
    pinned_compute_id: str | None = None
    interfaces: list[Interface] = field(default_factory=list)
    state: str = DEFINED
    queued_at: float | None = None
    boot_seconds: float = 0.0
    compute_id: str | None = None
    vnc_key: str | None = None
    console_key: str | None = None
    run_seconds: float = 0.0
    active_since: float | None = None

    @property
    def definition(self) -> NodeDefinition:
        return definition_for(self.node_definition)

    @property
    def effective_cpus(self) -> int:
        return self.cpus if self.cpus is not None else self.definition.cpus

    @property
    def effective_ram(self) -> int:
        return self.ram if self.ram is not None else self.definition.ram

    @property
    def effective_cpu_limit(self) -> int:
        return self.cpu_limit if self.cpu_limit is not None else self.definition.cpu_limit

    @property
    def effective_image(self) -> str | None:
        return self.image_definition if self.image_definition is not None else self.definition.image

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_NODE_STATES

    @property
    def is_deployed(self) -> bool:
        """True while the node has a domain on a compute (running or stopped, not wiped)."""
        return self.state != DEFINED

    def active_seconds(self, now: float) -> float:
        return self.run_seconds + (now - self.active_since if self.active_since is not None else 0.0)

    def interface(self, interface_id: str) -> Interface | None:
        return next((iface for iface in self.interfaces if iface.id == interface_id), None)


@dataclass
class Link:
    id: str
    lab_id: str
    label: str
    interface_a: str
    interface_b: str
    node_a: str
    node_b: str
    link_capture_key: str
    conditioning: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False


@dataclass
class Lab:
    id: str
    title: str
    description: str
    notes: str
    owner: str
    created: float
    modified: float
    nodes: dict[str, Node] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    empty_state: str = DEFINED
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        """STARTED if any node runs, else STOPPED if any node is deployed, else DEFINED_ON_CORE."""
        if not self.nodes:
            return self.empty_state
        states = {node.state for node in self.nodes.values()}
        if states & ACTIVE_NODE_STATES:
            return STARTED
        return STOPPED if STOPPED in states else DEFINED

    def converged(self) -> bool:
        """CML's check_if_converged: no node is still on its way up (QUEUED or STARTED)."""
        return not any(node.state in (QUEUED, STARTED) for node in self.nodes.values())

    def node(self, node_id: str, *, status: int = 404) -> Node:
        node = self.nodes.get(node_id)
        if node is None:
            raise CmlError(status, f"Node not found: {node_id}")
        return node

    def link(self, link_id: str) -> Link:
        link = self.links.get(link_id)
        if link is None:
            raise not_found("Link", link_id)
        return link

    def interface(self, interface_id: str, *, status: int = 404) -> tuple[Node, Interface]:
        for node in self.nodes.values():
            iface = node.interface(interface_id)
            if iface is not None:
                return node, iface
        raise CmlError(status, f"Interface not found: {interface_id}")

    def link_state(self, link: Link) -> str:
        node_a, node_b = self.nodes[link.node_a], self.nodes[link.node_b]
        if not (node_a.is_deployed and node_b.is_deployed):
            return DEFINED
        if node_a.is_active and node_b.is_active and not link.stopped:
            return STARTED
        return STOPPED

    def interface_state(self, node: Node) -> str:
        """Interfaces follow their node, reduced to the three lab-level states."""
        if node.is_active:
            return STARTED
        return STOPPED if node.is_deployed else DEFINED


def advance_node(node: Node, now: float) -> list[tuple[str, float]]:
    """Move a booting node along QUEUED → STARTED → BOOTED up to `now`; return (state, when) changes.

    The boot time is the one in force when the node was started (`node.boot_seconds`).
    """
    if node.queued_at is None or node.state not in (QUEUED, STARTED):
        return []
    changes: list[tuple[str, float]] = []
    started_at = node.queued_at + node.boot_seconds * QUEUED_FRACTION
    booted_at = node.queued_at + node.boot_seconds
    if node.state == QUEUED and now >= started_at:
        node.state = STARTED
        changes.append((STARTED, started_at))
    if node.state == STARTED and now >= booted_at:
        node.state = BOOTED
        changes.append((BOOTED, booted_at))
    return changes
