"""JSON documents of labs, nodes, interfaces and links, in the shapes CML 2.9's API answers.

The tri-state query parameters are honoured: `operational` null puts the running values (or the
definition defaults) at the object root, true keeps the configured values at the root and adds an
`operational` sub-object, false shows configured values only; `exclude_configurations` true omits the
configuration, false gives every file, null gives the main day-0 configuration as a string.
"""

from __future__ import annotations

from typing import Any

from lcm_core.testing.cml_simulator.labs import BOOT_PROGRESS, BOOTED, STARTED, Interface, Lab, Link, Node
from lcm_core.testing.cml_simulator.state import HostState, iso

PERMISSIONS = ["lab_admin", "lab_edit", "lab_exec", "lab_view"]


def lab_json(host: HostState, lab: Lab) -> dict[str, Any]:
    return {
        "id": lab.id, "created": iso(lab.created), "modified": iso(lab.modified), "lab_title": lab.title,
        "lab_description": lab.description, "lab_notes": lab.notes, "owner": lab.owner,
        "owner_username": host.config.username, "owner_fullname": "", "state": lab.state,
        "node_count": len(lab.nodes), "link_count": len(lab.links), "groups": [],
        "effective_permissions": list(PERMISSIONS),
    }


def _configuration(node: Node, exclude: bool | None) -> Any:
    if exclude is False:
        return [dict(item) for item in node.configuration]
    return node.configuration[0]["content"] if node.configuration else None


def _serial_consoles(node: Node) -> list[dict[str, Any]]:
    if node.console_key is None:
        return []
    return [{"console_key": node.console_key, "label": f"{node.label} console 0", "device_number": 0}]


def _operational(node: Node) -> dict[str, Any]:
    deployed = node.is_deployed
    return {
        "boot_disk_size": node.boot_disk_size if deployed else None,
        "cpu_limit": node.effective_cpu_limit if deployed else None,
        "cpus": node.effective_cpus if deployed else None,
        "data_volume": node.data_volume if deployed else None,
        "ram": node.effective_ram if deployed else None,
        "compute_id": node.compute_id, "image_definition": node.effective_image if deployed else None,
        "vnc_key": node.vnc_key, "resource_pool": None, "iol_app_id": None,
        "serial_consoles": _serial_consoles(node),
    }


def node_json(node: Node, *, operational: bool | None = None, exclude_configurations: bool | None = None,
              simplified: bool = False) -> dict[str, Any]:
    merged = operational is None
    body: dict[str, Any] = {
        "id": node.id, "lab_id": node.lab_id, "label": node.label, "node_definition": node.node_definition,
        "x": node.x, "y": node.y,
        "image_definition": node.effective_image if merged else node.image_definition,
        "ram": node.effective_ram if merged else node.ram,
        "cpus": node.effective_cpus if merged else node.cpus,
        "cpu_limit": node.effective_cpu_limit if merged else node.cpu_limit,
        "data_volume": node.data_volume, "boot_disk_size": node.boot_disk_size, "hide_links": node.hide_links,
        "tags": list(node.tags), "parameters": dict(node.parameters),
        "state": node.state, "boot_progress": BOOT_PROGRESS[node.state],
        "pinned_compute_id": node.pinned_compute_id,
    }
    if exclude_configurations is not True and not simplified:
        body["configuration"] = _configuration(node, exclude_configurations)
    if merged:
        body.update({"compute_id": node.compute_id, "resource_pool": None, "vnc_key": node.vnc_key,
                     "iol_app_id": None, "serial_consoles": _serial_consoles(node)})
    if operational is True:
        body["operational"] = _operational(node)
    return body


def interface_json(lab: Lab, node: Node, iface: Interface, *, operational: bool | None = None) -> dict[str, Any]:
    running = node.is_deployed
    live = {"mac_address": iface.operational_mac if running else None, "src_udp_port": iface.src_udp_port,
            "dst_udp_port": iface.dst_udp_port, "device_name": iface.device_name}
    body: dict[str, Any] = {
        "id": iface.id, "label": iface.label, "lab_id": lab.id, "node": node.id, "type": iface.type,
        "slot": iface.slot, "mac_address": iface.mac_address, "is_connected": iface.is_connected,
        "state": lab.interface_state(node),
    }
    if operational is None:
        body.update(live)
        body["mac_address"] = iface.mac_address or live["mac_address"]
    elif operational:
        body["operational"] = live
    return body


def link_json(lab: Lab, link: Link, *, simplified: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": link.id, "lab_id": lab.id, "label": link.label, "state": lab.link_state(link),
        "interface_a": link.interface_a, "interface_b": link.interface_b, "node_a": link.node_a,
        "node_b": link.node_b, "link_capture_key": link.link_capture_key,
    }
    if not simplified:
        body["conditioning"] = dict(link.conditioning)
    return body


def _smart_annotations(lab: Lab) -> list[dict[str, Any]]:
    """CML creates one smart annotation per distinct node tag, server-side."""
    tags = sorted({tag for node in lab.nodes.values() for tag in node.tags})
    return [{"id": f"{lab.id[:24]}{index:012x}", "tag": tag, "label": tag, "is_on": True, "padding": 35,
             "tag_offset_x": 0, "tag_offset_y": 0, "tag_size": 14, "group_distance": 400, "thickness": 1,
             "border_style": "", "fill_color": "#80808040", "border_color": "#00000080", "z_index": 1}
            for index, tag in enumerate(tags)]


def topology_json(lab: Lab, *, exclude_configurations: bool | None) -> dict[str, Any]:
    nodes = []
    for node in lab.nodes.values():
        entry = node_json(node, operational=False, exclude_configurations=exclude_configurations)
        entry.pop("lab_id")
        entry["interfaces"] = [interface_json(lab, node, iface, operational=False) for iface in node.interfaces]
        nodes.append(entry)
    return {
        "lab": {"title": lab.title, "description": lab.description, "notes": lab.notes, "version": "0.3.0",
                "owner": lab.owner},
        "nodes": nodes,
        "links": [link_json(lab, link) for link in lab.links.values()],
        "annotations": [],
        "smart_annotations": _smart_annotations(lab),
    }


def element_state(lab: Lab) -> dict[str, Any]:
    return {
        "nodes": {node.id: node.state for node in lab.nodes.values()},
        "links": {link.id: lab.link_state(link) for link in lab.links.values()},
        "interfaces": {iface.id: lab.interface_state(node) for node in lab.nodes.values()
                       for iface in node.interfaces},
    }


def simulation_stats(lab: Lab, now: float) -> dict[str, Any]:
    """The ID-keyed form virl2-client reads; counters grow with each element's running time."""
    nodes = {}
    for node in lab.nodes.values():
        seconds = node.active_seconds(now)
        usage = 0.0
        if node.is_active:
            usage = 55.0 if node.state != BOOTED else 3.0 + (int(node.id[:2], 16) % 20) / 10.0
        nodes[node.id] = {"cpu_usage": round(usage * node.effective_cpus, 2),
                          "block0_rd_bytes": int(seconds * 4_000_000), "block0_wr_bytes": int(seconds * 350_000)}
    links = {}
    for link in lab.links.values():
        seconds = min(lab.nodes[link.node_a].active_seconds(now), lab.nodes[link.node_b].active_seconds(now))
        packets = int(seconds * 12)
        links[link.id] = {"readbytes": packets * 96, "readpackets": packets, "writebytes": packets * 88,
                          "writepackets": packets}
    return {"nodes": nodes, "links": links}


def layer3_addresses(lab: Lab) -> dict[str, Any]:
    """Snooped addresses of booted nodes' connected interfaces (empty until the lab runs)."""
    if lab.state != STARTED:
        return {}
    result: dict[str, Any] = {}
    for node_index, node in enumerate(lab.nodes.values()):
        interfaces = {}
        for iface in node.interfaces:
            if node.state == BOOTED and iface.is_connected and iface.operational_mac:
                address = f"192.168.{(node_index // 250) % 250}.{node_index % 250 + 2}"
                interfaces[iface.operational_mac] = {"id": iface.id, "label": iface.label, "ip4": [address],
                                                     "ip6": []}
        if interfaces:
            result[node.id] = {"name": node.label, "interfaces": interfaces}
    return result
