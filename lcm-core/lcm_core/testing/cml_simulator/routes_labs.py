"""CML's lab endpoints: list, create, import, read, update, start/stop/wipe, delete, status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from lcm_core.testing.cml_simulator import views
from lcm_core.testing.cml_simulator.auth import AuthedHost
from lcm_core.testing.cml_simulator.config import API_PREFIX, HOSTS_PREFIX
from lcm_core.testing.cml_simulator.errors import read_json, validate
from lcm_core.testing.cml_simulator.topology import export_yaml, parse_yaml

router = APIRouter(prefix=f"{HOSTS_PREFIX}/{{instance_id}}{API_PREFIX}")


class LabCreate(BaseModel):
    """POST/PATCH /labs body (the request uses `title`, the response `lab_title`)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, max_length=4096)
    notes: str | None = Field(None, max_length=32768)
    owner: str | None = None
    associations: dict[str, Any] | None = None
    groups: list[Any] | None = None
    autostart: dict[str, Any] | None = None
    node_staging: dict[str, Any] | None = None


def _now(request: Request) -> float:
    return float(request.app.state.simulator.now())


@router.get("/labs")
async def list_labs(host: AuthedHost, show_all: bool = False) -> list[str]:
    """Lab ids only. The one simulated user is an admin who owns every lab, so `show_all` changes nothing."""
    return list(host.labs)


@router.post("/labs")
async def create_lab(host: AuthedHost, request: Request) -> dict[str, Any]:
    body = validate(LabCreate, await read_json(request))
    lab = host.new_lab(_now(request), body.title, body.description or "", body.notes or "")
    return views.lab_json(host, lab)


@router.get("/populate_lab_tiles")
async def lab_tiles(host: AuthedHost) -> dict[str, Any]:
    return {"lab_tiles": {lab.id: {**views.lab_json(host, lab), "topology": {"nodes": [], "links": []}}
                          for lab in host.labs.values()}}


@router.post("/import")
async def import_lab(host: AuthedHost, request: Request,
                     title: str | None = Query(None, min_length=1, max_length=64)) -> dict[str, Any]:
    data = parse_yaml(await request.body())
    lab, warnings = host.import_lab(data, title, _now(request))
    return {"id": lab.id, "warnings": warnings or None}


@router.get("/labs/{lab_id}")
async def get_lab(host: AuthedHost, lab_id: str) -> dict[str, Any]:
    return views.lab_json(host, host.lab(lab_id))


@router.patch("/labs/{lab_id}")
async def update_lab(host: AuthedHost, lab_id: str, request: Request) -> dict[str, Any]:
    lab = host.lab(lab_id)
    body = validate(LabCreate, await read_json(request))
    if body.title is not None:
        lab.title = body.title
    if body.description is not None:
        lab.description = body.description
    if body.notes is not None:
        lab.notes = body.notes
    lab.modified = _now(request)
    host.record_lab_event(lab, "CHANGE", "LAB", lab.id, lab.modified, body.model_dump(exclude_none=True))
    return views.lab_json(host, lab)


@router.delete("/labs/{lab_id}")
async def delete_lab(host: AuthedHost, lab_id: str, request: Request) -> Response:
    host.delete_lab(host.lab(lab_id), _now(request))
    return Response(status_code=204)


@router.put("/labs/{lab_id}/start")
async def start_lab(host: AuthedHost, lab_id: str, request: Request) -> Response:
    host.start_lab(host.lab(lab_id), _now(request))
    return Response(status_code=204)


@router.put("/labs/{lab_id}/stop")
async def stop_lab(host: AuthedHost, lab_id: str, request: Request) -> Response:
    host.stop_lab(host.lab(lab_id), _now(request))
    return Response(status_code=204)


@router.put("/labs/{lab_id}/wipe")
async def wipe_lab(host: AuthedHost, lab_id: str, request: Request) -> Response:
    host.wipe_lab(host.lab(lab_id), _now(request))
    return Response(status_code=204)


@router.get("/labs/{lab_id}/state")
async def lab_state(host: AuthedHost, lab_id: str) -> JSONResponse:
    return JSONResponse(host.lab(lab_id).state)


@router.get("/labs/{lab_id}/check_if_converged")
async def lab_converged(host: AuthedHost, lab_id: str) -> JSONResponse:
    return JSONResponse(host.lab(lab_id).converged())


@router.get("/labs/{lab_id}/lab_element_state")
async def lab_element_state(host: AuthedHost, lab_id: str) -> dict[str, Any]:
    return views.element_state(host.lab(lab_id))


@router.get("/labs/{lab_id}/simulation_stats")
async def simulation_stats(host: AuthedHost, lab_id: str, request: Request) -> dict[str, Any]:
    return views.simulation_stats(host.lab(lab_id), _now(request))


@router.get("/labs/{lab_id}/topology")
async def topology(host: AuthedHost, lab_id: str, exclude_configurations: bool | None = None) -> dict[str, Any]:
    return views.topology_json(host.lab(lab_id), exclude_configurations=exclude_configurations)


@router.get("/labs/{lab_id}/download")
async def download(host: AuthedHost, lab_id: str, request: Request) -> PlainTextResponse:
    lab = host.lab(lab_id)
    host.record_telemetry("export_lab", {"lab_id": lab.id}, _now(request))
    return PlainTextResponse(export_yaml(lab), media_type="application/x-yaml")


@router.get("/labs/{lab_id}/events")
async def lab_events(host: AuthedHost, lab_id: str) -> list[dict[str, Any]]:
    return list(host.lab(lab_id).events)


@router.get("/labs/{lab_id}/layer3_addresses")
async def layer3_addresses(host: AuthedHost, lab_id: str) -> dict[str, Any]:
    lab = host.labs.get(lab_id)
    return views.layer3_addresses(lab) if lab is not None else {}


@router.get("/labs/{lab_id}/resource_pools")
async def resource_pools(host: AuthedHost, lab_id: str) -> list[str]:
    host.lab(lab_id)
    return []

