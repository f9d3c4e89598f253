"""The topology summary the dashboard shows on a definition's page: nodes with what each needs, links, ports.

Derived from the stored (already validated) topology with the same rules as the resource estimate and the
port template (`lcm_core.domain.lablet_topology`), so the page never parses YAML itself.
"""

from __future__ import annotations

from typing import Any

from control_plane_api.domain.lablet_definition import LabletDefinition
from lcm_core.domain.lablet_topology import NODE_DEFAULTS, UNKNOWN_NODE, parse_topology
from lcm_core.domain.lablets import parse_port_tag, port_name


def _node(node: dict[str, Any]) -> dict[str, Any]:
    defaults = NODE_DEFAULTS.get(node["node_definition"], UNKNOWN_NODE)
    own_disk = (node.get("boot_disk_size") or 0) + (node.get("data_volume") or 0)
    ports = []
    for tag in node.get("tags") or []:
        parsed = parse_port_tag(tag)
        if parsed is not None:
            ports.append({"name": port_name(node["label"], parsed[0]), "kind": parsed[0], "template_port": parsed[1]})
    return {
        "id": node["id"], "label": node["label"], "node_definition": node["node_definition"],
        "cpus": node["cpus"] if node.get("cpus") is not None else defaults.cpus,
        "ram_mb": node["ram"] if node.get("ram") is not None else defaults.ram_mb,
        "disk_gb": own_disk if own_disk else defaults.disk_gb,
        "counts_against_node_limit": defaults.counts,
        "interfaces": len(node.get("interfaces") or []),
        "ports": ports,
    }


def topology_summary(definition: LabletDefinition) -> dict[str, Any]:
    topology = parse_topology(definition.lab_topology_yaml, cml_rules=False)
    nodes = [_node(n) for n in topology["nodes"]]
    labels = {n["id"]: n["label"] for n in nodes}
    links = [{"label": link.get("label") if isinstance(link.get("label"), str) else None,
              "from": labels[link["n1"]], "to": labels[link["n2"]]} for link in topology.get("links") or []]
    return {
        "definition_id": definition.id, "version": definition.version, "title": definition.topology_title,
        "node_count": len(nodes), "nodes": nodes, "links": links,
        "port_template": [p.model_dump() for p in definition.port_template],
        "estimated_requirements": definition.estimated_requirements.model_dump(),
    }
