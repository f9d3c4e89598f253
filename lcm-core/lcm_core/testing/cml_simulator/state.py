"""Per-host runtime state (labs, licensing, sessions, events) and the registry of simulated hosts.

A host is created the first time anything addresses its instance id, from its deterministic profile.
Everything here runs on the event loop (all handlers are `async def` without awaits in between
mutations), so no locking is needed. Handlers call `SimulatorState.host()`, which first advances the
host's clock-driven state (node boots, pending licence registration) to the current time.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from lcm_core.testing.cml_simulator.config import SimulatorConfig
from lcm_core.testing.cml_simulator.errors import CmlError, not_found
from lcm_core.testing.cml_simulator.labs import (
    BOOTED,
    DEFINED,
    QUEUED,
    STARTED,
    STOPPED,
    Lab,
    Node,
    advance_node,
)
from lcm_core.testing.cml_simulator.licensing import LicensingState
from lcm_core.testing.cml_simulator.profile import HostProfile, host_profile
from lcm_core.testing.cml_simulator.topology import import_topology

_NODE_TELEMETRY = {QUEUED: "queue_node", STARTED: "start_node", BOOTED: "boot_node", STOPPED: "stop_node",
                   DEFINED: "wipe_node"}
MAX_EVENTS = 1000


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


class HostState:
    """One simulated CML controller (with its computes)."""

    def __init__(self, profile: HostProfile, config: SimulatorConfig, now: float) -> None:
        self.profile = profile
        self.config = config
        self.created = now
        self.labs: dict[str, Lab] = {}
        self.licensing = LicensingState.initial(profile, now)
        self.sessions: dict[str, float] = {}
        self.telemetry_events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self.telemetry_opt_in: bool | None = True
        self.ready = True
        self.ssms_reachable = True
        self.boot_seconds = config.boot_seconds
        self.registration_seconds = config.registration_seconds
        self._rng = random.Random(f"cml-simulator-runtime/{profile.instance_id}")
        self._next_udp_port = 20000

    # ---- clock ----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply the boots and registrations due by `now`, recording their events in time order."""
        self.licensing.advance(now, self.ssms_reachable)
        due = [(when, state, lab, node) for lab in self.labs.values() for node in lab.nodes.values()
               for state, when in advance_node(node, now)]
        for when, state, lab, node in sorted(due, key=lambda change: change[0]):
            self._record_node(lab, node, state, when)

    # ---- events ---------------------------------------------------------------------------

    def record_telemetry(self, category: str, data: dict[str, Any], at: float) -> None:
        self.telemetry_events.append({"category": category, "timestamp": iso(at), "data": data})

    def record_lab_event(self, lab: Lab, event: str, element_type: str, element_id: str, at: float,
                         data: dict[str, Any] | None = None, previous: dict[str, Any] | None = None) -> None:
        lab.events.append({"lab_id": lab.id, "event": event, "element_type": element_type,
                           "element_id": element_id, "data": data or {}, "previous": previous or {},
                           "timestamp": iso(at)})
        del lab.events[:-MAX_EVENTS]

    def _record_node(self, lab: Lab, node: Node, state: str, at: float, previous: str | None = None) -> None:
        self.record_lab_event(lab, "STATE_CHANGED", "NODE", node.id, at, {"state": state},
                              {"state": previous} if previous else None)
        self.record_telemetry(_NODE_TELEMETRY[state], {"lab_id": lab.id, "node_id": node.id,
                                                       "node_definition": node.node_definition}, at)

    # ---- labs -----------------------------------------------------------------------------

    def lab(self, lab_id: str) -> Lab:
        lab = self.labs.get(lab_id)
        if lab is None:
            raise not_found("Lab", lab_id)
        return lab

    def new_lab(self, now: float, title: str | None = None, description: str = "", notes: str = "") -> Lab:
        default_title = f"Lab at {datetime.fromtimestamp(now, UTC).strftime('%a %H:%M %p')}"
        lab = Lab(id=str(uuid.uuid4()), title=title or default_title, description=description, notes=notes,
                  owner=self.profile.admin_user_id, created=now, modified=now)
        self.labs[lab.id] = lab
        self.record_lab_event(lab, "ADD", "LAB", lab.id, now, {"title": lab.title})
        return lab

    def import_lab(self, data: dict[str, Any], title: str | None, now: float) -> tuple[Lab, list[str]]:
        lab = Lab(id=str(uuid.uuid4()), title="", description="", notes="", owner=self.profile.admin_user_id,
                  created=now, modified=now)
        warnings = import_topology(data, lab, title)
        if not lab.title:
            lab.title = f"Lab at {datetime.fromtimestamp(now, UTC).strftime('%a %H:%M %p')}"
        self.labs[lab.id] = lab
        self.record_lab_event(lab, "ADD", "LAB", lab.id, now, {"title": lab.title})
        self.record_telemetry("import_lab", {"lab_id": lab.id, "nodes": len(lab.nodes), "links": len(lab.links)},
                              now)
        return lab, warnings

    def start_lab(self, lab: Lab, now: float) -> None:
        self._require_ready()
        previous = lab.state
        for node in lab.nodes.values():
            self.start_node(lab, node, now)
        lab.empty_state = STARTED
        self._lab_changed(lab, previous, now, "start_lab")

    def stop_lab(self, lab: Lab, now: float) -> None:
        previous = lab.state
        for node in lab.nodes.values():
            self.stop_node(lab, node, now)
        if lab.empty_state == STARTED:
            lab.empty_state = STOPPED
        self._lab_changed(lab, previous, now, "stop_lab")

    def wipe_lab(self, lab: Lab, now: float) -> None:
        if lab.state == STARTED:
            raise CmlError(400, f"Lab {lab.id} has running nodes: stop the lab before wiping it")
        previous = lab.state
        for node in lab.nodes.values():
            self.wipe_node(lab, node, now)
        lab.empty_state = DEFINED
        self._lab_changed(lab, previous, now, None)

    def delete_lab(self, lab: Lab, now: float) -> None:
        if lab.state != DEFINED:
            raise CmlError(400, f"Lab {lab.id} must be stopped and wiped before it can be removed")
        del self.labs[lab.id]
        self.record_telemetry("user_activity", {"action": "remove_lab", "lab_id": lab.id}, now)

    def _lab_changed(self, lab: Lab, previous: str, now: float, category: str | None) -> None:
        lab.modified = now
        if lab.state != previous:
            self.record_lab_event(lab, "STATE_CHANGED", "LAB", lab.id, now, {"state": lab.state},
                                  {"state": previous})
        if category:
            self.record_telemetry(category, {"lab_id": lab.id, "nodes": len(lab.nodes)}, now)

    # ---- nodes ----------------------------------------------------------------------------

    def _require_ready(self) -> None:
        if not self.ready:
            raise CmlError(400, "No compute host is ready to run nodes")

    def nodes_on(self, compute_id: str) -> list[Node]:
        return [node for lab in self.labs.values() for node in lab.nodes.values() if node.compute_id == compute_id]

    def _place(self, node: Node) -> str:
        """The pinned compute, else the one with the lowest share of its CPUs allocated."""
        ids = [compute.id for compute in self.profile.computes]
        if node.pinned_compute_id in ids:
            return node.pinned_compute_id

        def load(compute_index: int) -> float:
            compute = self.profile.computes[compute_index]
            allocated = sum(other.effective_cpus for other in self.nodes_on(compute.id) if other.is_active)
            return allocated / compute.cpu_count

        return ids[min(range(len(ids)), key=load)]

    def _mac(self) -> str:
        tail = self._rng.getrandbits(24)
        return f"{self.profile.oui}:{tail >> 16:02x}:{(tail >> 8) & 0xFF:02x}:{tail & 0xFF:02x}"

    def start_node(self, lab: Lab, node: Node, now: float) -> None:
        self._require_ready()
        if node.is_active:
            return
        previous = node.state
        if node.compute_id is None:
            node.compute_id = self._place(node)
            node.vnc_key, node.console_key = str(uuid.uuid4()), str(uuid.uuid4())
            for iface in node.interfaces:
                if iface.type == "physical":
                    iface.operational_mac = iface.mac_address or self._mac()
                    iface.device_name = f"tap{self._rng.getrandbits(32):08x}"
        for iface in node.interfaces:
            if iface.is_connected:
                iface.src_udp_port, iface.dst_udp_port = self._next_udp_port, self._next_udp_port + 1
                self._next_udp_port += 2
        node.state, node.queued_at, node.active_since, node.boot_seconds = QUEUED, now, now, self.boot_seconds
        self._record_node(lab, node, QUEUED, now, previous)
        for state, when in advance_node(node, now):
            self._record_node(lab, node, state, when)

    def stop_node(self, lab: Lab, node: Node, now: float) -> None:
        if not node.is_active:
            return
        previous = node.state
        node.run_seconds = node.active_seconds(now)
        node.state, node.queued_at, node.active_since = STOPPED, None, None
        for iface in node.interfaces:
            iface.src_udp_port = iface.dst_udp_port = None
        self._record_node(lab, node, STOPPED, now, previous)

    def wipe_node(self, lab: Lab, node: Node, now: float) -> None:
        if node.is_active:
            raise CmlError(400, f"Node {node.id} is running: stop it before wiping its disks")
        if node.state == DEFINED:
            return
        node.state, node.compute_id, node.vnc_key, node.console_key = DEFINED, None, None, None
        node.run_seconds = 0.0
        for iface in node.interfaces:
            iface.operational_mac = iface.device_name = None
        self._record_node(lab, node, DEFINED, now, STOPPED)


class SimulatorState:
    """All simulated hosts of this process, created on first use."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.hosts: dict[str, HostState] = {}

    def now(self) -> float:
        return self.config.clock()

    def host(self, instance_id: str) -> HostState:
        now = self.now()
        host = self.hosts.get(instance_id)
        if host is None:
            host = self.hosts[instance_id] = HostState(host_profile(instance_id), self.config, now)
        host.advance(now)
        return host

    def forget(self, instance_id: str) -> bool:
        return self.hosts.pop(instance_id, None) is not None

    def reset(self) -> None:
        self.hosts.clear()
