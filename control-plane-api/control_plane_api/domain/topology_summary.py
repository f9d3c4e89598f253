"""The topology summary the dashboard shows on a definition's page: nodes with what each needs, links, ports.

Derived from the stored (already validated) topology with the same rules as the resource estimate and the
port template (`lcm_core.domain.lablet_topology`), so the page never parses YAML itself. Pure, and CPU-heavy
for a large topology: the application runs it off the event loop.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.domain.lablet_definition import LabletDefinition
from lcm_core.domain.lablet_topology import NODE_DEFAULTS, UNKNOWN_NODE, parse_topology
from lcm_core.domain.lablets import PortSpec, ResourceRequirements, parse_port_tag, port_name


class NodePort(BaseModel):
    name: str
    kind: str
    template_port: int


class TopologyNode(BaseModel):
    id: str
    label: str
    node_definition: str
    cpus: int
    ram_mb: int
    disk_gb: float
    counts_against_node_limit: bool
    interfaces: int
    ports: list[NodePort]


class TopologyLink(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    label: str | None
    from_: str = Field(alias="from")
    to: str


class TopologySummary(BaseModel):
    definition_id: str
    version: int
    title: str | None
    node_count: int
    nodes: list[TopologyNode]
    links: list[TopologyLink]
    port_template: list[PortSpec]
    estimated_requirements: ResourceRequirements


def _node(node: dict[str, Any]) -> TopologyNode:
    defaults = NODE_DEFAULTS.get(node["node_definition"], UNKNOWN_NODE)
    own_disk = (node.get("boot_disk_size") or 0) + (node.get("data_volume") or 0)
    ports = []
    for tag in node.get("tags") or []:
        parsed = parse_port_tag(tag)
        if parsed is not None:
            ports.append(NodePort(name=port_name(node["label"], parsed[0]), kind=parsed[0], template_port=parsed[1]))
    return TopologyNode(
        id=node["id"], label=node["label"], node_definition=node["node_definition"],
        cpus=node["cpus"] if node.get("cpus") is not None else defaults.cpus,
        ram_mb=node["ram"] if node.get("ram") is not None else defaults.ram_mb,
        disk_gb=own_disk if own_disk else defaults.disk_gb,
        counts_against_node_limit=defaults.counts,
        interfaces=len(node.get("interfaces") or []),
        ports=ports,
    )


def topology_summary(definition: LabletDefinition) -> TopologySummary:
    topology = parse_topology(definition.lab_topology_yaml, cml_rules=False)
    nodes = [_node(n) for n in topology["nodes"]]
    labels = {n.id: n.label for n in nodes}
    links = [TopologyLink(label=link.get("label") if isinstance(link.get("label"), str) else None,
                          from_=labels[link["n1"]], to=labels[link["n2"]]) for link in topology.get("links") or []]
    return TopologySummary(
        definition_id=definition.id, version=definition.version, title=definition.topology_title,
        node_count=len(nodes), nodes=nodes, links=links,
        port_template=[p.model_copy() for p in definition.port_template],
        estimated_requirements=definition.estimated_requirements.model_copy(),
    )
