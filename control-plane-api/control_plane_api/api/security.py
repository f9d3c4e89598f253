"""Request authentication and authorisation, as FastAPI dependencies.

- Internal routes: `X-API-Key`, compared in constant time; mutating ones also need the leader epoch.
- Public routes: a bearer JWT or the dashboard session cookie; `viewer` reads, `admin` mutates.
  Cookie-authenticated mutations must come from the same origin, checked by `web_guard.WebGuard` with
  scheme, host and port before anything else (the cookie is also SameSite=Strict).

The credentials are first checked by `request_guard.AuthenticateFirst`, before the body is read; the caller
it found is kept in the request's state, so the dependencies below do not verify the same token twice.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from control_plane_api.bootstrap import ControlPlane
from control_plane_api.domain.fencing import LABLET_CONTROLLER, WORKER_CONTROLLER, LeaderCaller
from control_plane_api.infrastructure.identity import AuthenticationError, Principal, SessionStore

_bearer = HTTPBearer(auto_error=False, description="Bearer JWT (OIDC / Keycloak, or the local stack's tokens)")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Internal API key of the controllers")


def control_plane(request: Request) -> ControlPlane:
    return request.app.state.control_plane


CP = Annotated[ControlPlane, Depends(control_plane)]


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


#: Where `AuthenticateFirst` leaves the caller it verified, in the ASGI scope's `state`.
PRINCIPAL_STATE = "lcm_principal"


async def authenticate(cp: ControlPlane, bearer: str | None, cookie: str | None) -> Principal:
    """A bearer token wins over the session cookie; raises `AuthenticationError` when neither is valid."""
    if bearer is not None:
        return await cp.tokens.verify(bearer)
    if cookie:
        return await cp.sessions.read(cookie)
    raise AuthenticationError("authentication required: a bearer token or a dashboard session")


def api_key_valid(cp: ControlPlane, key: str | None) -> bool:
    expected = cp.settings.api_key.get_secret_value().encode()
    return key is not None and hmac.compare_digest(key.encode(), expected)


async def principal(
    request: Request,
    cp: CP,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    found = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if not isinstance(found, Principal):
        try:
            found = await authenticate(cp, credentials.credentials if credentials else None,
                                       request.cookies.get(SessionStore.COOKIE))
        except AuthenticationError as exc:
            raise _unauthenticated(exc.message) from exc
    return found


def require(role: str):
    async def dependency(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.has(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the {role!r} role is required")
        return who

    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Admin = Annotated[Principal, Depends(require("admin"))]


async def internal_caller(cp: CP, key: Annotated[str | None, Depends(_api_key)]) -> str:
    if not api_key_valid(cp, key):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid X-API-Key is required",
                            headers={"WWW-Authenticate": "ApiKey"})
    return "controller"


Internal = Annotated[str, Depends(internal_caller)]


LeaderEpoch = Annotated[str | None, Header(
    alias="X-LCM-Leader-Epoch",
    description="The epoch of the calling controller's leadership (fencing token): the current leader's of the "
                "service that owns the route (worker-controller for workers, lablet-controller for lablets)")]


def leader_of(service: str) -> Callable[..., Awaitable[LeaderCaller]]:
    """The fence of the mutating routes of `service`: the call must come from that service's current leader
    (else 409). The caller it yields goes down to the repository, whose write checks its epoch again against
    the tokens stored with the aggregate (docs/architecture.md, "The leader fence in storage")."""

    async def leading(cp: CP, _caller: Internal, epoch: LeaderEpoch = None) -> LeaderCaller:
        return await cp.etcd.verify_epoch(epoch, service)

    leading.__name__ = leading.__qualname__ = f"leading_{service.replace('-', '_')}"
    return leading


leading_controller = leader_of(WORKER_CONTROLLER)
leading_lablet_controller = leader_of(LABLET_CONTROLLER)
Leader = Annotated[LeaderCaller, Depends(leading_controller)]
"""The worker-controller leader (the mutating worker routes)."""
LabletLeader = Annotated[LeaderCaller, Depends(leading_lablet_controller)]
"""The lablet-controller leader (the mutating lablet-session routes)."""


async def viewer_or_api_key(
    request: Request, cp: CP,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    key: Annotated[str | None, Depends(_api_key)],
) -> str:
    """For `/metrics`: Prometheus scrapes with the API key or a viewer's token."""
    if key is not None:
        return await internal_caller(cp, key)
    who = await principal(request, cp, credentials)
    if not who.has("viewer"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the 'viewer' role is required")
    return who.subject
