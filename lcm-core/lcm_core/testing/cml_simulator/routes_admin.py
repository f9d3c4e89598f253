"""The simulator's own control API under `/_admin` (no authentication; loopback dev/test use only).

Tests and the local stack use it to probe readiness, inject and clear faults, inspect or tune a host
(readiness, SSMS reachability, boot time) and revoke tokens. It is never part of the CML API surface,
and faults never apply to it.

    GET    /_admin/health                          {"status": "ok"} (readiness probe)
    POST   /_admin/reset                           forget every host and clear every fault
    GET    /_admin/faults                          {"global": fault|null, "hosts": {id: fault}}
    PUT    /_admin/faults                          set the global fault (body: FaultSpec)
    DELETE /_admin/faults                          clear all faults (global and per host)
    DELETE /_admin/faults/global                   clear the global fault only
    PUT    /_admin/hosts/{id}/faults               set one host's fault (body: FaultSpec)
    DELETE /_admin/hosts/{id}/faults               clear one host's fault
    GET    /_admin/hosts                           summaries of the hosts created so far
    GET    /_admin/hosts/{id}                      profile + runtime summary (creates the host)
    PATCH  /_admin/hosts/{id}                      HostSettings: ready, ssms_reachable, boot_seconds, ...
    DELETE /_admin/hosts/{id}                      forget the host's state (it comes back identical)
    POST   /_admin/hosts/{id}/revoke_tokens        end every session: the next call with a token is 401
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lcm_core.testing.cml_simulator.errors import read_json, validate
from lcm_core.testing.cml_simulator.faults import FaultRegistry, FaultSpec
from lcm_core.testing.cml_simulator.state import HostState, SimulatorState

router = APIRouter(prefix="/_admin")


class HostSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ready: bool | None = Field(None, description="system_information.ready; false refuses to start nodes")
    ssms_reachable: bool | None = Field(None, description="false: registrations fail, deregistration is 202")
    boot_seconds: float | None = Field(None, ge=0, le=3600, description="boot time of nodes started from now")
    registration_seconds: float | None = Field(None, ge=0, le=3600)


def _simulator(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


def _faults(request: Request) -> FaultRegistry:
    registry: FaultRegistry = request.app.state.faults
    return registry


def _summary(host: HostState) -> dict[str, Any]:
    nodes = [node for lab in host.labs.values() for node in lab.nodes.values()]
    return {
        "instance_id": host.profile.instance_id,
        "profile": asdict(host.profile),
        "ready": host.ready,
        "ssms_reachable": host.ssms_reachable,
        "boot_seconds": host.boot_seconds,
        "registration_seconds": host.registration_seconds,
        "labs": len(host.labs),
        "nodes": len(nodes),
        "running_nodes": sum(node.is_active for node in nodes),
        "sessions": len(host.sessions),
        "registration": host.licensing.registration_status,
    }


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    """Forget every host (labs, licensing, sessions) and clear every fault."""
    _faults(request).reset()
    _simulator(request).reset()
    return {"status": "reset"}


# ---- faults --------------------------------------------------------------------------------------


@router.get("/faults")
async def faults(request: Request) -> dict[str, Any]:
    return _faults(request).snapshot()


@router.put("/faults")
async def set_global_fault(request: Request) -> dict[str, Any]:
    return _faults(request).set(None, validate(FaultSpec, await read_json(request))).to_json()


@router.delete("/faults")
async def clear_all_faults(request: Request) -> Response:
    _faults(request).reset()
    return Response(status_code=204)


@router.delete("/faults/global")
async def clear_global_fault(request: Request) -> Response:
    _faults(request).clear(None)
    return Response(status_code=204)


@router.put("/hosts/{instance_id}/faults")
async def set_host_fault(instance_id: str, request: Request) -> dict[str, Any]:
    return _faults(request).set(instance_id, validate(FaultSpec, await read_json(request))).to_json()


@router.delete("/hosts/{instance_id}/faults")
async def clear_host_fault(instance_id: str, request: Request) -> Response:
    _faults(request).clear(instance_id)
    return Response(status_code=204)


# ---- hosts ---------------------------------------------------------------------------------------


@router.get("/hosts")
async def hosts(request: Request) -> list[dict[str, Any]]:
    state = _simulator(request)
    return [_summary(state.host(instance_id)) for instance_id in list(state.hosts)]


@router.get("/hosts/{instance_id}")
async def host(instance_id: str, request: Request) -> dict[str, Any]:
    return _summary(_simulator(request).host(instance_id))


@router.patch("/hosts/{instance_id}")
async def configure_host(instance_id: str, request: Request) -> dict[str, Any]:
    settings = validate(HostSettings, await read_json(request))
    target = _simulator(request).host(instance_id)
    for key, value in settings.model_dump(exclude_none=True).items():
        setattr(target, key, value)
    return _summary(target)


@router.delete("/hosts/{instance_id}")
async def forget_host(instance_id: str, request: Request) -> Response:
    _faults(request).clear(instance_id)
    _simulator(request).forget(instance_id)
    return Response(status_code=204)


@router.post("/hosts/{instance_id}/revoke_tokens")
async def revoke_tokens(instance_id: str, request: Request) -> dict[str, Any]:
    target = _simulator(request).host(instance_id)
    revoked = len(target.sessions)
    target.sessions.clear()
    return {"revoked": revoked}
