"""CML lab topologies (the YAML CML imports and exports) as lablet definitions use them. No I/O.

- `parse_topology` checks what CML's import requires and raises `TopologyError` naming the problem;
- `derive_port_template` reads the port tags of the nodes (`serial:5041`, ...: a port per tag; docs/lablets.md);
- `estimate_resources` gives a first `resource_requirements` from the nodes and their definitions' defaults;
- `with_allocated_ports` rewrites the port tags of a topology with a session's allocated ports (what the
  lablet-controller imports on the worker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml

from lcm_core.domain.lablets import PortSpec, ResourceRequirements, parse_port_tag, port_name

MAX_TOPOLOGY_BYTES = 1_000_000
#: CML topologies nest about six levels (nodes -> node -> interfaces -> interface -> value); anything far deeper
#: is not a topology, and the YAML composer recurses once per level, so depth is checked before composing.
MAX_TOPOLOGY_DEPTH = 32

#: `lab.version` values CML's import takes (the topology schema versions); anything else it refuses.
CML_SCHEMA_VERSIONS = frozenset({"0.0.1", "0.0.2", "0.0.3", "0.0.4", "0.0.5", "0.1.0", "0.2.0", "0.2.1", "0.2.2",
                                 "0.3.0"})

# libyaml, when PyYAML was built with it, parses about ten times faster than the pure-Python parser.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TopologyError(ValueError):
    """The text is not a CML lab topology LCM can use; the message names the problem."""


@dataclass(frozen=True)
class NodeDefaults:
    cpus: int
    ram_mb: int
    disk_gb: float
    counts: bool = True
    """Whether the node counts against a worker's node limit (connectors and unmanaged switches do not)."""


#: Defaults of the CML 2.9 reference platform's node definitions (a node's own `cpus`/`ram` win).
NODE_DEFAULTS: dict[str, NodeDefaults] = {
    "iosv": NodeDefaults(1, 768, 1), "iosvl2": NodeDefaults(1, 768, 1), "iol-xe": NodeDefaults(1, 768, 1),
    "ioll2-xe": NodeDefaults(1, 768, 1), "csr1000v": NodeDefaults(1, 3072, 8),
    "cat8000v": NodeDefaults(1, 5120, 8), "iosxrv9000": NodeDefaults(4, 20480, 45),
    "nxosv9000": NodeDefaults(2, 10240, 8), "asav": NodeDefaults(1, 2048, 8), "ubuntu": NodeDefaults(1, 2048, 8),
    "alpine": NodeDefaults(1, 512, 1), "desktop": NodeDefaults(1, 3072, 4), "server": NodeDefaults(1, 128, 1),
    "unmanaged_switch": NodeDefaults(0, 0, 0, counts=False),
    "external_connector": NodeDefaults(0, 0, 0, counts=False),
}
UNKNOWN_NODE = NodeDefaults(1, 1024, 4)


def _bad(message: str) -> TopologyError:
    return TopologyError(f"invalid lab topology: {message}")


def _text(value: Any, what: str, max_length: int = 128) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{what} must be a non-empty string")
    if len(value) > max_length:
        raise _bad(f"{what} is longer than {max_length} characters")
    return value


def _optional_int(value: Any, what: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(f"{what} must be an integer in {low}..{high}, got {str(value)[:40]!r}")
    return value


def parse_topology(text: str, *, cml_rules: bool = True) -> dict[str, Any]:
    """The topology as a mapping, checked: `lab`, `nodes` (id, label, node_definition, x, y; optional
    cpus, ram, tags, interfaces) and `links` (n1/i1/n2/i2 naming existing nodes and interfaces), and, with
    `cml_rules`, everything else CML's import requires (`lab.version`, configuration forms, ranges, each
    interface linked once). Without them it only reads: a definition stored before a rule was added can
    still be shown."""
    if not isinstance(text, str) or not text.strip():
        raise _bad("the YAML is empty")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TOPOLOGY_BYTES:
        raise _bad(f"the YAML is larger than {MAX_TOPOLOGY_BYTES} bytes")
    try:
        _check_depth(text)
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise _bad(f"not parseable as YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise _bad("the document must be a mapping with 'lab', 'nodes' and 'links'")
    for key in ("lab", "nodes", "links"):
        if key not in data:
            raise _bad(f"the required key {key!r} is missing")
    if not isinstance(data["lab"], dict):
        raise _bad("'lab' must be a mapping (title, description, notes, version)")
    nodes, links = data["nodes"], data["links"]
    if not isinstance(nodes, list) or not nodes:
        raise _bad("'nodes' must be a non-empty list")
    if not isinstance(links, list):
        raise _bad("'links' must be a list")
    interfaces: dict[str, set[str]] = {}
    labels: set[str] = set()
    for index, node in enumerate(nodes):
        interfaces.update(_check_node(node, index, interfaces, labels))
    for index, link in enumerate(links):
        _check_link(link, index, interfaces)
    if cml_rules:
        _check_cml_rules(data)
    return data


def _check_cml_rules(data: dict[str, Any]) -> None:
    """What CML's import refuses beyond what LCM needs to read the topology (the structure is checked)."""
    for node in data["nodes"]:
        label = node["label"]
        _optional_int(node.get("cpus"), f"node {label!r}: cpus", 1, 128)
        _optional_int(node.get("cpu_limit"), f"node {label!r}: cpu_limit", 20, 100)
        if not valid_configuration(node.get("configuration")):
            raise _bad(f"node {label!r}: configuration must be text, a mapping with 'name' and 'content', "
                       "or a list of such mappings")
        if any(tag == "" for tag in node.get("tags") or []):
            raise _bad(f"node {label!r}: tags must not be empty")
        for position, iface in enumerate(node.get("interfaces") or []):
            if iface["type"] == "physical":
                _optional_int(iface.get("slot"), f"node {label!r}: interfaces[{position}].slot", 0, 128)
    connected: set[tuple[str, str]] = set()
    for index, link in enumerate(data["links"]):
        if link.get("id") is None:
            raise _bad(f"links[{index}].id is required")
        for end in ((link["n1"], link["i1"]), (link["n2"], link["i2"])):
            if end in connected:
                raise _bad(f"links[{index}]: interface {end[1]!r} of node {end[0]!r} is already connected")
            connected.add(end)
    version = data["lab"].get("version")
    if str(version) not in CML_SCHEMA_VERSIONS:
        raise _bad(f"lab.version {str(version)[:20]!r} is not a topology schema version CML imports "
                   f"({', '.join(sorted(CML_SCHEMA_VERSIONS))})")


def _check_depth(text: str) -> None:
    """Refuse documents nested deeper than `MAX_TOPOLOGY_DEPTH` from the event stream alone (the event
    parser keeps its own stack and does not recurse; composing the document does)."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_TOPOLOGY_DEPTH:
                mark = event.start_mark  # the parser gives every event one; PyYAML's Event allows None
                where = "" if mark is None else f" (at line {mark.line + 1}, column {mark.column + 1})"
                raise _bad(f"the YAML is nested deeper than {MAX_TOPOLOGY_DEPTH} levels{where}")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_node(node: Any, index: int, seen: dict[str, set[str]], labels: set[str]) -> dict[str, set[str]]:
    if not isinstance(node, dict):
        raise _bad(f"nodes[{index}] must be a mapping")
    node_id = _text(node.get("id"), f"nodes[{index}].id", 64)
    label = _text(node.get("label"), f"nodes[{index}].label")
    if node_id in seen:
        raise _bad(f"node id {node_id!r} appears twice")
    if label in labels:
        raise _bad(f"node label {label!r} appears twice (port names are derived from labels)")
    labels.add(label)
    _text(node.get("node_definition"), f"node {label!r}: node_definition", 64)
    for axis in ("x", "y"):
        if node.get(axis) is None:
            raise _bad(f"node {label!r}: {axis} is required")
        _optional_int(node.get(axis), f"node {label!r}: {axis}", -15000, 15000)
    _optional_int(node.get("cpus"), f"node {label!r}: cpus", 0, 128)
    _optional_int(node.get("ram"), f"node {label!r}: ram", 0, 1_048_576)
    _optional_int(node.get("boot_disk_size"), f"node {label!r}: boot_disk_size", 0, 4096)
    _optional_int(node.get("data_volume"), f"node {label!r}: data_volume", 0, 4096)
    tags = node.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 64 for t in tags):
        raise _bad(f"node {label!r}: tags must be a list of strings of at most 64 characters")
    if any(parse_port_tag(t) for t in tags) and (label.startswith("$") or "." in label):
        raise _bad(f"node {label!r}: a node with port tags may not have '.' in its label or start with '$'")
    ifaces = node.get("interfaces") or []
    if not isinstance(ifaces, list):
        raise _bad(f"node {label!r}: interfaces must be a list")
    ids: set[str] = set()
    for position, iface in enumerate(ifaces):
        if not isinstance(iface, dict):
            raise _bad(f"node {label!r}: interfaces[{position}] must be a mapping")
        ids.add(_text(iface.get("id"), f"node {label!r}: interfaces[{position}].id", 64))
        if iface.get("type") not in ("physical", "loopback"):
            raise _bad(f"node {label!r}: interfaces[{position}].type must be 'physical' or 'loopback'")
    return {node_id: ids}


def valid_configuration(value: Any) -> bool:
    """A node configuration in a form CML imports: none, text (the main file), or one or more files as
    mappings (`name`, `content`)."""
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, dict):
        value = [value]
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _check_link(link: Any, index: int, interfaces: dict[str, set[str]]) -> None:
    if not isinstance(link, dict):
        raise _bad(f"links[{index}] must be a mapping")
    for node_key, iface_key in (("n1", "i1"), ("n2", "i2")):
        node_id, iface_id = link.get(node_key), link.get(iface_key)
        if node_id not in interfaces:
            raise _bad(f"links[{index}].{node_key} {str(node_id)[:40]!r} is not a node id of this topology")
        if iface_id not in interfaces[node_id]:
            raise _bad(f"links[{index}].{iface_key} {str(iface_id)[:40]!r} is not an interface of node {node_id!r}")


def derive_port_template(topology: dict[str, Any]) -> list[PortSpec]:
    """One entry per port tag, named `{label}_{kind}`; a node asking twice for one kind is refused."""
    found: dict[str, PortSpec] = {}
    for node in topology["nodes"]:
        for tag in node.get("tags") or []:
            parsed = parse_port_tag(tag)
            if parsed is None:
                continue
            kind, port = parsed
            name = port_name(node["label"], kind)
            if name in found:
                raise _bad(f"node {node['label']!r} has two {kind} port tags")
            found[name] = PortSpec(name=name, node_label=node["label"], kind=kind, template_port=port)
    return list(found.values())


def estimate_resources(topology: dict[str, Any]) -> ResourceRequirements:
    """Sum of the nodes' CPUs, memory and disk (node values where given, else their definitions' defaults)."""
    cpus = ram_mb = 0
    disk_gb = 0.0
    count = 0
    for node in topology["nodes"]:
        defaults = NODE_DEFAULTS.get(node["node_definition"], UNKNOWN_NODE)
        cpus += node["cpus"] if node.get("cpus") is not None else defaults.cpus
        ram_mb += node["ram"] if node.get("ram") is not None else defaults.ram_mb
        own_disk = (node.get("boot_disk_size") or 0) + (node.get("data_volume") or 0)
        disk_gb += own_disk if own_disk else defaults.disk_gb
        count += 1 if defaults.counts else 0
    return ResourceRequirements(cpu_cores=cpus, memory_gb=math.ceil(ram_mb / 1024 * 4) / 4,
                                storage_gb=disk_gb, node_count=count)


def topology_title(topology: dict[str, Any]) -> str | None:
    title = topology["lab"].get("title")
    return title if isinstance(title, str) else None


def with_allocated_ports(text: str, allocated: dict[str, int], title: str | None = None) -> str:
    """The topology with each port tag rewritten to the session's allocated port (by port name); tags
    without an allocation are left as they are. `title` replaces the lab title (e.g. to carry the session id)."""
    topology = parse_topology(text)
    for node in topology["nodes"]:
        tags = []
        for tag in node.get("tags") or []:
            parsed = parse_port_tag(tag)
            name = port_name(node["label"], parsed[0]) if parsed else None
            tags.append(f"{parsed[0]}:{allocated[name]}" if parsed and name in allocated else tag)
        if tags:
            node["tags"] = tags
    if title is not None:
        topology["lab"]["title"] = title[:64]
    return yaml.safe_dump(topology, sort_keys=False)
