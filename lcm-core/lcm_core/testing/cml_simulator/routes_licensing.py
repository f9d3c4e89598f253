"""CML's licensing endpoints: status, register, renew, deregister, product, transport, features."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from lcm_core.testing.cml_simulator.auth import AuthedHost
from lcm_core.testing.cml_simulator.config import API_PREFIX, HOSTS_PREFIX
from lcm_core.testing.cml_simulator.errors import CmlError, read_json

router = APIRouter(prefix=f"{HOSTS_PREFIX}/{{instance_id}}{API_PREFIX}/licensing")


def _now(request: Request) -> float:
    return float(request.app.state.simulator.now())


def _no_content(status: int = 204) -> Response:
    return Response(status_code=status)


@router.get("")
async def licensing(host: AuthedHost) -> dict[str, Any]:
    return host.licensing.to_json()


@router.post("/registration")
async def register(host: AuthedHost, request: Request) -> Response:
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    now = _now(request)
    host.licensing.register(body.get("token"), body.get("reregister", False), now, host.registration_seconds)
    host.record_telemetry("license_info", {"action": "register"}, now)
    if host.registration_seconds <= 0:
        host.licensing.advance(now, host.ssms_reachable)
    return _no_content()


@router.put("/registration/renew")
async def renew_registration(host: AuthedHost, request: Request) -> Response:
    host.licensing.renew("registration", _now(request), host.ssms_reachable)
    return _no_content()


@router.put("/authorization/renew")
async def renew_authorization(host: AuthedHost, request: Request) -> Response:
    host.licensing.renew("authorization", _now(request), host.ssms_reachable)
    return _no_content()


@router.delete("/deregistration")
async def deregister(host: AuthedHost, request: Request) -> Response:
    active = sum(node.is_active for lab in host.labs.values() for node in lab.nodes.values())
    if active:  # a licensed controller refuses to give its licence up under running nodes
        raise CmlError(409, f"Cannot deregister while {active} node(s) are running: stop them first")
    status = host.licensing.deregister(host.ssms_reachable)
    host.record_telemetry("license_info", {"action": "deregister"}, _now(request))
    return _no_content(status)


@router.put("/product_license")
async def product_license(host: AuthedHost, request: Request) -> Response:
    host.licensing.set_product(await read_json(request))
    return _no_content()


@router.put("/transport")
async def transport(host: AuthedHost, request: Request) -> Response:
    host.licensing.set_transport(await read_json(request))
    return _no_content()


@router.patch("/features")
async def features(host: AuthedHost, request: Request) -> Response:
    host.licensing.set_features(await read_json(request))
    return _no_content()


@router.put("/reservation/mode")
async def reservation_mode(host: AuthedHost, request: Request) -> Response:
    host.licensing.set_reservation_mode(await read_json(request))
    return _no_content()


@router.get("/tech_support")
async def tech_support(host: AuthedHost, request: Request) -> PlainTextResponse:
    return PlainTextResponse(host.licensing.tech_support(_now(request)))
