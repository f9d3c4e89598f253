"""Lab files in and out: POST /import (YAML topology → a new Lab) and GET /download (Lab → YAML).

The import checks what the CML `Topology` schema requires (lab/nodes/links, node id/label/definition/
x/y, interface id/type, links by file-local ids) and answers 400 with a description otherwise, as a
controller does. File-local ids (`n0`, `i1`, `l0`) become server UUIDs.
"""

from __future__ import annotations

import uuid
from typing import Any

import yaml

# One list for LCM's check of a definition and this simulator's import: they must not drift apart.
from lcm_core.domain.lablet_topology import CML_SCHEMA_VERSIONS as SCHEMA_VERSIONS
from lcm_core.testing.cml_simulator.catalog import CATALOG, definition_for
from lcm_core.testing.cml_simulator.errors import CmlError
from lcm_core.testing.cml_simulator.labs import Interface, Lab, Link, Node

COORDINATE_LIMIT = 15000


def _bad(description: str) -> CmlError:
    return CmlError(400, f"Lab import failed: {description}")


def parse_yaml(raw: bytes) -> dict[str, Any]:
    """YAML is a JSON superset: the body is parsed as YAML whatever its Content-Type says."""
    try:
        data = yaml.safe_load(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _bad(f"not a YAML/JSON document ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise _bad("the topology must be a mapping with 'lab', 'nodes' and 'links'")
    return data


def _int(value: Any, what: str, low: int, high: int, *, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"{what} must be an integer in {low}..{high}, got {value!r}")
    return value


def configuration_files(value: Any, node: str) -> list[dict[str, str]]:
    """A node's configuration in any of the accepted forms, as a list of {name, content} files."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"name": "Main", "content": value}]
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return [{"name": str(item.get("name") or "Main"), "content": str(item.get("content") or "")}
                for item in value]
    raise _bad(f"node {node}: invalid configuration")


def tags_of(value: Any, node: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) and 0 < len(tag) <= 64 for tag in value):
        raise _bad(f"node {node}: tags must be a list of 1-64 character strings")
    return list(value)


def _node(lab_id: str, raw: dict[str, Any], warnings: list[str]) -> tuple[str, Node, dict[str, Interface]]:
    local_id = raw.get("id")
    label, definition = raw.get("label"), raw.get("node_definition")
    if not isinstance(local_id, str | int) or not isinstance(label, str) or not 1 <= len(label) <= 128:
        raise _bad(f"node {local_id!r}: 'id' and a 1-128 character 'label' are required")
    if not isinstance(definition, str) or not definition:
        raise _bad(f"node {local_id}: 'node_definition' is required")
    if definition not in CATALOG:
        warnings.append(f"Node definition '{definition}' is unknown to this simulator; generic defaults used")
    node = Node(
        id=str(uuid.uuid4()), lab_id=lab_id, label=label, node_definition=definition,
        x=_int(raw.get("x"), f"node {local_id}: x", -COORDINATE_LIMIT, COORDINATE_LIMIT, optional=False) or 0,
        y=_int(raw.get("y"), f"node {local_id}: y", -COORDINATE_LIMIT, COORDINATE_LIMIT, optional=False) or 0,
        image_definition=raw.get("image_definition"),
        ram=_int(raw.get("ram"), f"node {local_id}: ram", 0, 1024 * 1024),
        cpus=_int(raw.get("cpus"), f"node {local_id}: cpus", 1, 128),
        cpu_limit=_int(raw.get("cpu_limit"), f"node {local_id}: cpu_limit", 20, 100),
        data_volume=_int(raw.get("data_volume"), f"node {local_id}: data_volume", 0, 4096),
        boot_disk_size=_int(raw.get("boot_disk_size"), f"node {local_id}: boot_disk_size", 0, 4096),
        hide_links=bool(raw.get("hide_links") or False),
        tags=tags_of(raw.get("tags"), str(local_id)),
        parameters=dict(raw.get("parameters") or {}),
        configuration=configuration_files(raw.get("configuration"), str(local_id)),
    )
    interfaces: dict[str, Interface] = {}
    for item in raw.get("interfaces") or []:
        if not isinstance(item, dict) or "id" not in item or item.get("type") not in ("physical", "loopback"):
            raise _bad(f"node {local_id}: each interface needs an 'id' and a 'type' of physical|loopback")
        slot = None if item["type"] == "loopback" else _int(item.get("slot"), "interface slot", 0, 128)
        default_label = "Loopback0" if item["type"] == "loopback" else node.definition.interface_label(slot or 0)
        iface = Interface(id=str(uuid.uuid4()), lab_id=lab_id, node_id=node.id,
                          label=str(item.get("label") or default_label), type=item["type"], slot=slot,
                          mac_address=item.get("mac_address"))
        interfaces[str(item["id"])] = iface
        node.interfaces.append(iface)
    return str(local_id), node, interfaces


def _link(lab: Lab, raw: Any, nodes: dict[str, tuple[Node, dict[str, Interface]]]) -> Link:
    if not isinstance(raw, dict) or not all(key in raw for key in ("id", "n1", "n2", "i1", "i2")):
        raise _bad("each link needs 'id', 'n1', 'i1', 'n2' and 'i2'")
    ends = []
    for node_key, iface_key in (("n1", "i1"), ("n2", "i2")):
        node, interfaces = nodes.get(str(raw[node_key]), (None, {}))
        iface = interfaces.get(str(raw[iface_key]))
        if node is None or iface is None:
            raise _bad(f"link {raw['id']}: no interface {raw[iface_key]} on node {raw[node_key]}")
        if iface.is_connected:
            raise _bad(f"link {raw['id']}: interface {raw[iface_key]} of node {raw[node_key]} is already connected")
        ends.append((node, iface))
    (node_a, iface_a), (node_b, iface_b) = ends
    link = Link(id=str(uuid.uuid4()), lab_id=lab.id, label=str(raw.get("label") or f"{node_a.label}-{node_b.label}"),
                interface_a=iface_a.id, interface_b=iface_b.id, node_a=node_a.id, node_b=node_b.id,
                link_capture_key=str(uuid.uuid4()), conditioning=dict(raw.get("conditioning") or {}))
    iface_a.link_id = iface_b.link_id = link.id
    return link


def import_topology(data: dict[str, Any], lab: Lab, title: str | None) -> list[str]:
    """Fill the empty `lab` from an import document; return the import warnings."""
    missing = [key for key in ("lab", "nodes", "links") if key not in data]
    if missing:
        raise _bad(f"missing required key(s): {', '.join(missing)}")
    meta, raw_nodes, raw_links = data["lab"], data["nodes"] or [], data["links"] or []
    if not isinstance(meta, dict) or not isinstance(raw_nodes, list) or not isinstance(raw_links, list):
        raise _bad("'lab' must be a mapping, 'nodes' and 'links' lists")
    if str(meta.get("version")) not in SCHEMA_VERSIONS:
        raise _bad(f"unsupported topology schema version {meta.get('version')!r}")
    lab.title = title or str(meta.get("title") or lab.title)[:64]
    lab.description = str(meta.get("description") or "")
    lab.notes = str(meta.get("notes") or "")
    warnings: list[str] = []
    nodes: dict[str, tuple[Node, dict[str, Interface]]] = {}
    for raw in raw_nodes:
        if not isinstance(raw, dict):
            raise _bad("each node must be a mapping")
        local_id, node, interfaces = _node(lab.id, raw, warnings)
        if local_id in nodes:
            raise _bad(f"duplicate node id {local_id}")
        nodes[local_id] = (node, interfaces)
        lab.nodes[node.id] = node
    for raw in raw_links:
        link = _link(lab, raw, nodes)
        lab.links[link.id] = link
    return warnings


def export_yaml(lab: Lab) -> str:
    """The lab as a CML 0.3.0 YAML file with file-local ids, as GET /download returns it."""
    node_ids = {node.id: f"n{index}" for index, node in enumerate(lab.nodes.values())}
    iface_ids: dict[str, str] = {}
    nodes = []
    for node in lab.nodes.values():
        interfaces = []
        for index, iface in enumerate(node.interfaces):
            iface_ids[iface.id] = f"i{index}"
            entry: dict[str, Any] = {"id": f"i{index}", "label": iface.label, "type": iface.type}
            if iface.slot is not None:
                entry["slot"] = iface.slot
            interfaces.append(entry)
        nodes.append({
            "id": node_ids[node.id], "label": node.label, "node_definition": node.node_definition,
            "x": node.x, "y": node.y, "image_definition": node.image_definition, "ram": node.ram,
            "cpus": node.cpus, "cpu_limit": node.cpu_limit, "data_volume": node.data_volume,
            "boot_disk_size": node.boot_disk_size, "hide_links": node.hide_links, "tags": node.tags,
            "parameters": node.parameters, "configuration": node.configuration, "interfaces": interfaces,
        })
    links = [{"id": f"l{index}", "n1": node_ids[link.node_a], "i1": iface_ids[link.interface_a],
              "n2": node_ids[link.node_b], "i2": iface_ids[link.interface_b], "label": link.label,
              "conditioning": link.conditioning} for index, link in enumerate(lab.links.values())]
    document = {"annotations": [], "smart_annotations": [], "nodes": nodes, "links": links,
                "lab": {"description": lab.description, "notes": lab.notes, "title": lab.title, "version": "0.3.0"}}
    return yaml.safe_dump(document, sort_keys=False)


def default_interfaces(node: Node) -> list[Interface]:
    """What `populate_interfaces=true` creates: Loopback0 (if the definition has one) and default_count ports."""
    definition = definition_for(node.node_definition)
    created = []
    if definition.loopback:
        created.append(Interface(id=str(uuid.uuid4()), lab_id=node.lab_id, node_id=node.id, label="Loopback0",
                                 type="loopback", slot=None))
    for slot in range(definition.default_count):
        created.append(Interface(id=str(uuid.uuid4()), lab_id=node.lab_id, node_id=node.id,
                                 label=definition.interface_label(slot), type="physical", slot=slot))
    return created
