"""Dashboard login/logout: a local user's password or an identity provider's bearer token becomes an
HttpOnly, SameSite=Strict session cookie."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.api.security import CP, principal
from control_plane_api.infrastructure.identity import AuthenticationError, Principal, SessionCodec

router = APIRouter(prefix="/api/auth", tags=["auth"])

_FAILURE_WINDOW_SECONDS = 60.0
_MAX_FAILURES = 5
_failures: dict[str, deque[float]] = defaultdict(deque)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=10, max_length=16384)
    """An OIDC access token (e.g. from Keycloak) to exchange for a dashboard session."""


class Me(BaseModel):
    subject: str
    roles: list[str]
    via: str


def _throttled(key: str) -> bool:
    window = _failures[key]
    now = time.monotonic()
    while window and now - window[0] > _FAILURE_WINDOW_SECONDS:
        window.popleft()
    return len(window) >= _MAX_FAILURES


def _me(who: Principal) -> Me:
    return Me(subject=who.subject, roles=sorted(who.roles), via=who.via)


@router.post("/login", summary="Open a dashboard session (local user or bearer token)")
async def login(body: LoginBody, response: Response, cp: CP) -> Me:
    who: Principal | None = None
    key = f"user:{body.username}" if body.username else "token"
    if _throttled(key):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed logins; wait a minute")
    if body.token:
        try:
            who = await cp.tokens.verify(body.token)
        except AuthenticationError as exc:
            _failures[key].append(time.monotonic())
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, exc.message) from exc
    elif body.username and body.password:
        who = cp.local_users.authenticate(body.username, body.password)
    else:
        raise HTTPException(422, "give username and password, or token")
    if who is None:
        _failures[key].append(time.monotonic())
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    if not who.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account has no LCM role (admin or viewer)")
    settings = cp.settings
    secure = settings.cookie_secure if settings.cookie_secure is not None else settings.environment == "production"
    response.set_cookie(SessionCodec.COOKIE, cp.sessions.issue(who), max_age=cp.sessions.ttl_seconds,
                        httponly=True, samesite="strict", secure=secure, path="/")
    return _me(Principal(who.subject, who.roles, "session"))


@router.post("/logout", status_code=204, summary="Close the dashboard session")
async def logout(response: Response, _who: Annotated[Principal, Depends(principal)]) -> Response:
    response.delete_cookie(SessionCodec.COOKIE, path="/")
    response.status_code = 204
    return response


@router.get("/me", summary="Who is logged in, with which roles")
async def me(who: Annotated[Principal, Depends(principal)]) -> Me:
    return _me(who)
