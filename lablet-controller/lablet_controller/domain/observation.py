"""Assemble a `ResourceObservation` from what CML answered. No I/O.

Totals:
- `total_cpu_cores`: Σ over nodes of `cpus * cpu_limit / 100` (CML's `cpu_limit` is a percentage of the
  node's CPUs; a node without `cpu_limit` may use all of them; a node without `cpus` counts 0);
- `total_memory_mb`: Σ `ram` (MB);
- `total_storage_mb`: Σ (`boot_disk_size` + `data_volume`) * 1024 when any node states a disk size, else
  None, never guessed (CML's `resource_pool_usage` would be the authoritative figure; it is not read);
- `observed_ports`: the port tags the nodes carry now, by port name (`PC_serial`), which is what the
  CPA compares with the allocation to detect drift.
A node, interface or stats entry CML did not describe is left out or null, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from lcm_core.cml.models import Interface, Node, SimulationStats
from lcm_core.domain.lablets import (
    InterfaceObservation,
    NodeObservation,
    ResourceObservation,
    observed_ports_from_nodes,
)

MAX_TAG_LENGTH = 64


def interface_observation(interface: Interface, ip4: Sequence[str] = ()) -> InterfaceObservation:
    return InterfaceObservation(
        interface_id=interface.id, label=interface.label or interface.id, slot=interface.slot,
        state=interface.state or "UNKNOWN", mac_address=interface.mac_address, ip4=list(ip4))


def node_observation(node: Node, interfaces: Sequence[Interface],
                     ip4_by_mac: Mapping[str, Sequence[str]] | None = None) -> NodeObservation:
    ip4_by_mac = ip4_by_mac or {}
    return NodeObservation(
        node_id=node.id, label=node.label or node.id, node_definition=node.node_definition or "unknown",
        state=node.state or "UNKNOWN", cpu_limit=node.cpu_limit, ram_mb=node.ram,
        tags=[tag for tag in node.tags if isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_LENGTH],
        interfaces=[interface_observation(i, ip4_by_mac.get((i.mac_address or "").lower(), ()))
                    for i in interfaces])


def _cpu_cores(node: Node) -> float:
    if node.cpus is None:
        return 0.0
    limit = node.cpu_limit if node.cpu_limit is not None else 100
    return node.cpus * max(0, min(limit, 100)) / 100


def _storage_mb(nodes: Sequence[Node]) -> int | None:
    sizes = [(n.boot_disk_size or 0) + (n.data_volume or 0) for n in nodes
             if n.boot_disk_size is not None or n.data_volume is not None]
    return sum(sizes) * 1024 if sizes else None


def ip4_by_mac(layer3: Any) -> dict[str, list[str]]:
    """`GET /labs/{id}/layer3_addresses` → {mac: [ipv4...]} (an unexpected shape gives nothing)."""
    found: dict[str, list[str]] = {}
    if not isinstance(layer3, dict):
        return found
    for entry in layer3.values():
        interfaces = entry.get("interfaces") if isinstance(entry, dict) else None
        if not isinstance(interfaces, dict):
            continue
        for mac, iface in interfaces.items():
            ips = iface.get("ip4") if isinstance(iface, dict) else None
            if isinstance(mac, str) and isinstance(ips, list):
                found[mac.lower()] = [ip for ip in ips if isinstance(ip, str)]
    return found


def build_observation(nodes: Sequence[Node], interfaces: Mapping[str, Sequence[Interface]],
                      stats: SimulationStats | None, *, observed_at: datetime,
                      observer: Literal["lablet-controller", "manual"], layer3: Any = None,
                      request_id: str | None = None) -> ResourceObservation:
    """The observation of one lab: `interfaces` by node id, `stats` None when CML did not answer them."""
    by_mac = ip4_by_mac(layer3)
    observed = [node_observation(node, interfaces.get(node.id, ()), by_mac) for node in nodes]
    return ResourceObservation(
        observed_at=observed_at, observer=observer,
        total_cpu_cores=round(sum(_cpu_cores(n) for n in nodes), 3),
        total_memory_mb=sum(n.ram or 0 for n in nodes),
        total_storage_mb=_storage_mb(nodes),
        nodes=observed, actual_node_count=len(nodes),
        node_definitions_used=sorted({n.node_definition for n in nodes if n.node_definition}),
        observed_ports=observed_ports_from_nodes(observed),
        simulation_stats=stats.model_dump(mode="json") if stats is not None else None,
        request_id=request_id,
    )
