"""Authentication, system, users, telemetry and node-definition endpoints of a simulated host."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from lcm_core.testing.cml_simulator import stats
from lcm_core.testing.cml_simulator.auth import AnyHost, AuthedHost, bearer_jti, check_credentials, mint_token
from lcm_core.testing.cml_simulator.catalog import CATALOG, full_json, simplified_json
from lcm_core.testing.cml_simulator.config import API_PREFIX, HOSTS_PREFIX
from lcm_core.testing.cml_simulator.errors import CmlError, read_json
from lcm_core.testing.cml_simulator.state import HostState, iso

router = APIRouter(prefix=f"{HOSTS_PREFIX}/{{instance_id}}{API_PREFIX}")


def _now(request: Request) -> float:
    return float(request.app.state.simulator.now())


# ---- authentication ------------------------------------------------------------------------------


@router.post("/authenticate")
async def authenticate(host: AnyHost, request: Request) -> JSONResponse:
    check_credentials(host, await read_json(request))
    return JSONResponse(mint_token(host, _now(request)))


@router.post("/auth_extended")
async def auth_extended(host: AnyHost, request: Request) -> dict[str, Any]:
    check_credentials(host, await read_json(request))
    return {"username": host.config.username, "id": host.profile.admin_user_id,
            "token": mint_token(host, _now(request)), "admin": True, "error": None}


@router.get("/authok")
async def authok(host: AuthedHost) -> JSONResponse:
    return JSONResponse("OK")


@router.delete("/logout")
async def logout(host: AuthedHost, request: Request, clear_all_sessions: bool = False) -> JSONResponse:
    if clear_all_sessions:
        host.sessions.clear()
    else:
        host.sessions.pop(bearer_jti(request) or "", None)
    return JSONResponse(True)


# ---- system --------------------------------------------------------------------------------------


@router.get("/system_information")
async def system_information(host: AnyHost) -> dict[str, Any]:
    return stats.system_information(host)


@router.get("/system_stats")
async def system_stats(host: AuthedHost) -> dict[str, Any]:
    return stats.system_stats(host)


@router.get("/system_health")
async def system_health(host: AuthedHost) -> dict[str, Any]:
    return stats.system_health(host)


@router.get("/system/compute_hosts")
async def compute_hosts(host: AuthedHost) -> list[dict[str, Any]]:
    return stats.compute_hosts(host)


# ---- users ---------------------------------------------------------------------------------------


def _user(host: HostState) -> dict[str, Any]:
    return {"id": host.profile.admin_user_id, "username": host.config.username, "fullname": "",
            "email": "", "description": "", "admin": True, "directory_dn": "", "groups": [],
            "labs": sorted(host.labs), "opt_in": True, "resource_pool": None, "tour_version": "",
            "pubkey_info": "", "created": iso(host.created), "modified": iso(host.created)}


@router.get("/users")
async def users(host: AuthedHost) -> list[dict[str, Any]]:
    return [_user(host)]


@router.get("/users/{user_id}")
async def user(host: AuthedHost, user_id: str) -> dict[str, Any]:
    if user_id != host.profile.admin_user_id:
        raise CmlError(404, f"User not found: {user_id}")
    return _user(host)


@router.get("/users/{username}/id")
async def user_id_of(host: AuthedHost, username: str) -> JSONResponse:
    if username != host.config.username:
        raise CmlError(404, f"User not found: {username}")
    return JSONResponse(host.profile.admin_user_id)


# ---- telemetry -----------------------------------------------------------------------------------


@router.get("/telemetry")
async def telemetry(host: AuthedHost) -> dict[str, Any]:
    return {"opt_in": host.telemetry_opt_in, "show_modal": host.telemetry_opt_in is None}


@router.put("/telemetry")
async def set_telemetry(host: AuthedHost, request: Request) -> dict[str, Any]:
    body = await read_json(request)
    opt_in = body.get("opt_in") if isinstance(body, dict) else None
    if not isinstance(opt_in, bool):
        raise CmlError(400, "opt_in must be true or false")
    host.telemetry_opt_in = opt_in
    return {"opt_in": opt_in, "show_modal": False}


@router.get("/telemetry/events")
async def telemetry_events(host: AuthedHost) -> list[dict[str, Any]]:
    return list(host.telemetry_events)


# ---- resources and node definitions --------------------------------------------------------------


@router.get("/resource_pool_usage")
async def resource_pool_usage(host: AuthedHost) -> list[dict[str, Any]]:
    return []


@router.get("/resource_pool_usage/{resource_pool_id}")
async def one_resource_pool_usage(host: AuthedHost, resource_pool_id: str) -> Response:
    raise CmlError(404, f"Resource pool not found: {resource_pool_id}")


@router.get("/node_definitions")
async def node_definitions(host: AuthedHost) -> list[dict[str, Any]]:
    return [full_json(definition) for definition in CATALOG.values()]


@router.get("/node_definitions/{definition_id}")
async def node_definition(host: AuthedHost, definition_id: str) -> dict[str, Any]:
    definition = CATALOG.get(definition_id)
    if definition is None:
        raise CmlError(404, f"Node definition not found: {definition_id}")
    return full_json(definition)


@router.get("/simplified_node_definitions")
async def simplified_node_definitions(host: AuthedHost) -> list[dict[str, Any]]:
    return [simplified_json(definition) for definition in CATALOG.values()]
