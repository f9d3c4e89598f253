"""CML's node, interface and link endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from lcm_core.testing.cml_simulator import views
from lcm_core.testing.cml_simulator.auth import AuthedHost
from lcm_core.testing.cml_simulator.config import API_PREFIX, HOSTS_PREFIX
from lcm_core.testing.cml_simulator.errors import CmlError, read_json, validate
from lcm_core.testing.cml_simulator.labs import BOOT_PROGRESS, DEFINED, QUEUED, STARTED, Interface, Lab, Link, Node
from lcm_core.testing.cml_simulator.state import HostState
from lcm_core.testing.cml_simulator.topology import configuration_files, default_interfaces, tags_of

router = APIRouter(prefix=f"{HOSTS_PREFIX}/{{instance_id}}{API_PREFIX}")

#: Fields that size a node's domain: CML only lets them change while the node has none (wiped).
_DOMAIN_FIELDS = ("image_definition", "ram", "cpus", "cpu_limit", "data_volume", "boot_disk_size")


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: int | None = Field(None, ge=-15000, le=15000)
    y: int | None = Field(None, ge=-15000, le=15000)
    label: str | None = Field(None, min_length=1, max_length=128)
    parameters: dict[str, Any] | None = None
    image_definition: str | None = None
    ram: int | None = Field(None, ge=0)
    cpus: int | None = Field(None, ge=1, le=128)
    cpu_limit: int | None = Field(None, ge=20, le=100)
    data_volume: int | None = Field(None, ge=0, le=4096)
    boot_disk_size: int | None = Field(None, ge=0, le=4096)
    hide_links: bool | None = None
    tags: list[str] | None = None
    configuration: Any = None
    pinned_compute_id: str | None = None


class NodeCreate(NodeUpdate):
    x: int = Field(..., ge=-15000, le=15000)
    y: int = Field(..., ge=-15000, le=15000)
    label: str = Field(..., min_length=1, max_length=128)
    node_definition: str = Field(..., min_length=1)
    priority: int | None = Field(None, ge=0, le=10000)
    resource_pool: str | None = None


def _now(request: Request) -> float:
    return float(request.app.state.simulator.now())


def _apply(node: Node, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if key == "tags":
            node.tags = tags_of(value, node.label)
        elif key == "configuration":
            node.configuration = configuration_files(value, node.label)
        elif key == "parameters":
            node.parameters = dict(value or {})
        elif hasattr(node, key):
            setattr(node, key, value)


# ---- nodes ---------------------------------------------------------------------------------------


@router.get("/labs/{lab_id}/nodes")
async def list_nodes(host: AuthedHost, lab_id: str, data: bool = False, operational: bool | None = None,
                     exclude_configurations: bool | None = None) -> list[Any]:
    lab = host.lab(lab_id)
    if not data:
        return list(lab.nodes)
    return [views.node_json(node, operational=operational, exclude_configurations=exclude_configurations)
            for node in lab.nodes.values()]


@router.post("/labs/{lab_id}/nodes")
async def create_node(host: AuthedHost, lab_id: str, request: Request,
                      populate_interfaces: bool = False) -> dict[str, Any]:
    lab = host.lab(lab_id)
    body = validate(NodeCreate, await read_json(request))
    node = Node(id=str(uuid.uuid4()), lab_id=lab.id, label=body.label, node_definition=body.node_definition,
                x=body.x, y=body.y)
    _apply(node, body.model_dump(exclude_unset=True, exclude={"label", "node_definition", "x", "y", "priority",
                                                               "resource_pool"}))
    if populate_interfaces:
        node.interfaces = default_interfaces(node)
    lab.nodes[node.id] = node
    lab.modified = _now(request)
    host.record_lab_event(lab, "ADD", "NODE", node.id, lab.modified, {"label": node.label})
    return {"id": node.id}


@router.get("/nodes")
async def all_nodes(host: AuthedHost, operational: bool | None = None,
                    exclude_configurations: bool | None = None) -> list[dict[str, Any]]:
    return [views.node_json(node, operational=operational, exclude_configurations=exclude_configurations)
            for lab in host.labs.values() for node in lab.nodes.values()]


def _lab_for_node(host: HostState, lab_id: str) -> Lab:
    """GET node answers 400 (not 404) for a missing lab or node, as the spec says."""
    lab = host.labs.get(lab_id)
    if lab is None:
        raise CmlError(400, f"Lab not found: {lab_id}")
    return lab


@router.get("/labs/{lab_id}/nodes/{node_id}")
async def get_node(host: AuthedHost, lab_id: str, node_id: str, simplified: bool = False,
                   operational: bool | None = None, exclude_configurations: bool | None = None) -> dict[str, Any]:
    node = _lab_for_node(host, lab_id).node(node_id, status=400)
    return views.node_json(node, operational=operational, exclude_configurations=exclude_configurations,
                           simplified=simplified)


@router.patch("/labs/{lab_id}/nodes/{node_id}")
async def update_node(host: AuthedHost, lab_id: str, node_id: str, request: Request) -> JSONResponse:
    lab = host.lab(lab_id)
    node = lab.node(node_id)
    changes = validate(NodeUpdate, await read_json(request)).model_dump(exclude_unset=True)
    locked = [key for key in _DOMAIN_FIELDS if key in changes and changes[key] != getattr(node, key)]
    if locked and node.state != DEFINED:
        raise CmlError(400, f"Node {node.id} must be wiped before changing {', '.join(locked)}")
    previous = {key: getattr(node, key) for key in changes if hasattr(node, key)}
    _apply(node, changes)
    lab.modified = _now(request)
    host.record_lab_event(lab, "CHANGE", "NODE", node.id, lab.modified, changes, previous)
    return JSONResponse(node.id)


@router.delete("/labs/{lab_id}/nodes/{node_id}")
async def delete_node(host: AuthedHost, lab_id: str, node_id: str, request: Request) -> Response:
    lab = host.lab(lab_id)
    node = lab.node(node_id)
    if node.state != DEFINED:
        raise CmlError(400, f"Node {node.id} must be stopped and wiped before it can be removed")
    for link in [link for link in lab.links.values() if node.id in (link.node_a, link.node_b)]:
        _remove_link(lab, link)
    del lab.nodes[node.id]
    lab.modified = _now(request)
    host.record_lab_event(lab, "REMOVE", "NODE", node.id, lab.modified)
    return Response(status_code=204)


@router.get("/labs/{lab_id}/nodes/{node_id}/state")
async def node_state(host: AuthedHost, lab_id: str, node_id: str) -> dict[str, Any]:
    node = host.lab(lab_id).node(node_id)
    return {"state": node.state, "progress": BOOT_PROGRESS[node.state]}


@router.put("/labs/{lab_id}/nodes/{node_id}/state/start")
async def start_node(host: AuthedHost, lab_id: str, node_id: str, request: Request) -> Response:
    lab = host.lab(lab_id)
    host.start_node(lab, lab.node(node_id), _now(request))
    return Response(status_code=204)


@router.put("/labs/{lab_id}/nodes/{node_id}/state/stop")
async def stop_node(host: AuthedHost, lab_id: str, node_id: str, request: Request) -> Response:
    lab = host.lab(lab_id)
    host.stop_node(lab, lab.node(node_id), _now(request))
    return Response(status_code=204)


@router.put("/labs/{lab_id}/nodes/{node_id}/wipe_disks")
async def wipe_node(host: AuthedHost, lab_id: str, node_id: str, request: Request) -> Response:
    lab = host.lab(lab_id)
    host.wipe_node(lab, lab.node(node_id), _now(request))
    return Response(status_code=204)


@router.get("/labs/{lab_id}/nodes/{node_id}/check_if_converged")
async def node_converged(host: AuthedHost, lab_id: str, node_id: str) -> JSONResponse:
    node = host.lab(lab_id).node(node_id)
    return JSONResponse(node.state not in (QUEUED, STARTED))


# ---- interfaces ----------------------------------------------------------------------------------


@router.get("/labs/{lab_id}/nodes/{node_id}/interfaces")
async def node_interfaces(host: AuthedHost, lab_id: str, node_id: str, data: bool = False,
                          operational: bool | None = None) -> list[Any]:
    lab = host.lab(lab_id)
    node = lab.node(node_id)
    if not data:
        return [iface.id for iface in node.interfaces]
    return [views.interface_json(lab, node, iface, operational=operational) for iface in node.interfaces]


@router.get("/labs/{lab_id}/interfaces/{interface_id}")
async def get_interface(host: AuthedHost, lab_id: str, interface_id: str,
                        operational: bool | None = None) -> dict[str, Any]:
    lab = host.lab(lab_id)
    node, iface = lab.interface(interface_id)
    return views.interface_json(lab, node, iface, operational=operational)


@router.patch("/labs/{lab_id}/interfaces/{interface_id}")
async def update_interface(host: AuthedHost, lab_id: str, interface_id: str, request: Request) -> dict[str, Any]:
    lab = host.lab(lab_id)
    node, iface = lab.interface(interface_id)
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) - {"mac_address"}:
        raise CmlError(400, "only mac_address can be changed")
    mac = body.get("mac_address")
    if mac is not None and (not isinstance(mac, str) or len(mac.split(":")) != 6):
        raise CmlError(400, f"invalid MAC address {mac!r}")
    iface.mac_address = mac
    return views.interface_json(lab, node, iface)


@router.get("/labs/{lab_id}/interfaces/{interface_id}/state")
async def interface_state(host: AuthedHost, lab_id: str, interface_id: str) -> dict[str, Any]:
    lab = host.lab(lab_id)
    node, iface = lab.interface(interface_id, status=400)
    return {"label": iface.label, "state": lab.interface_state(node)}


@router.post("/labs/{lab_id}/interfaces")
async def create_interface(host: AuthedHost, lab_id: str, request: Request) -> Any:
    lab = host.lab(lab_id)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("node"), str):
        raise CmlError(400, "'node' is required")
    node = lab.node(body["node"])
    slot = body.get("slot")
    limit = node.definition.physical
    if slot is not None and (not isinstance(slot, int) or not 0 <= slot < limit):
        raise CmlError(400, f"slot must be in 0..{limit - 1} for {node.node_definition}")
    used = {iface.slot for iface in node.interfaces if iface.type == "physical"}
    wanted = [s for s in range(slot + 1) if s not in used] if slot is not None else \
        [next((s for s in range(limit) if s not in used), -1)]
    if wanted == [-1]:
        raise CmlError(400, f"node {node.id} has no free interface slot")
    created = [Interface(id=str(uuid.uuid4()), lab_id=lab.id, node_id=node.id,
                         label=node.definition.interface_label(s), type="physical", slot=s,
                         mac_address=body.get("mac_address") if slot is None else None) for s in wanted]
    node.interfaces.extend(created)
    node.interfaces.sort(key=lambda iface: (iface.type != "loopback", iface.slot or 0))
    result = [views.interface_json(lab, node, iface) for iface in created]
    return result if slot is not None else result[0]


# ---- links ---------------------------------------------------------------------------------------


def _remove_link(lab: Lab, link: Link) -> None:
    for node_id, iface_id in ((link.node_a, link.interface_a), (link.node_b, link.interface_b)):
        iface = lab.nodes[node_id].interface(iface_id)
        if iface is not None:
            iface.link_id = None
    del lab.links[link.id]


@router.get("/labs/{lab_id}/links")
async def list_links(host: AuthedHost, lab_id: str, data: bool = False) -> list[Any]:
    lab = host.lab(lab_id)
    return [views.link_json(lab, link) for link in lab.links.values()] if data else list(lab.links)


@router.post("/labs/{lab_id}/links")
async def create_link(host: AuthedHost, lab_id: str, request: Request) -> dict[str, Any]:
    lab = host.lab(lab_id)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("src_int"), str) \
            or not isinstance(body.get("dst_int"), str):
        raise CmlError(400, "'src_int' and 'dst_int' are required")
    (node_a, iface_a), (node_b, iface_b) = lab.interface(body["src_int"]), lab.interface(body["dst_int"])
    if iface_a.id == iface_b.id or iface_a.is_connected or iface_b.is_connected:
        raise CmlError(400, "both interfaces must be distinct and unconnected")
    link = Link(id=str(uuid.uuid4()), lab_id=lab.id, label=f"{node_a.label}-{iface_a.label}<->{node_b.label}-"
                f"{iface_b.label}", interface_a=iface_a.id, interface_b=iface_b.id, node_a=node_a.id,
                node_b=node_b.id, link_capture_key=str(uuid.uuid4()))
    iface_a.link_id = iface_b.link_id = link.id
    lab.links[link.id] = link
    lab.modified = _now(request)
    host.record_lab_event(lab, "ADD", "LINK", link.id, lab.modified)
    return views.link_json(lab, link)


@router.get("/labs/{lab_id}/links/{link_id}")
async def get_link(host: AuthedHost, lab_id: str, link_id: str, simplified: bool = False) -> dict[str, Any]:
    lab = host.lab(lab_id)
    return views.link_json(lab, lab.link(link_id), simplified=simplified)


@router.put("/labs/{lab_id}/links/{link_id}/state/start")
async def start_link(host: AuthedHost, lab_id: str, link_id: str) -> Response:
    host.lab(lab_id).link(link_id).stopped = False
    return Response(status_code=204)


@router.put("/labs/{lab_id}/links/{link_id}/state/stop")
async def stop_link(host: AuthedHost, lab_id: str, link_id: str) -> Response:
    host.lab(lab_id).link(link_id).stopped = True
    return Response(status_code=204)
