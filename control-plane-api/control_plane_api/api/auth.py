"""Dashboard login/logout: a local user's password or an identity provider's bearer token becomes an
HttpOnly, SameSite=Strict session cookie."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from control_plane_api.api.responses import UNAVAILABLE, error_answer
from control_plane_api.api.security import CP, principal
from control_plane_api.bootstrap import ControlPlane
from control_plane_api.infrastructure.identity import AuthenticationError, Principal, SessionStore
from control_plane_api.infrastructure.oidc import FLOW_SECONDS, OidcLogin

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])
#: Browser navigations of the SSO flow (redirects, not an API): outside the OpenAPI document, and public.
sso_router = APIRouter(prefix="/api/auth/oidc", include_in_schema=False)


class LoginBody(BaseModel):
    # The document says what the route checks: a username and a password, or a token (the model alone would
    # describe `{}` as valid).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["username", "password"],
         "properties": {"username": {"type": "string"}, "password": {"type": "string"}}},
        {"required": ["token"], "properties": {"token": {"type": "string"}}},
    ]})

    username: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=10, max_length=16384)
    """An OIDC access token (e.g. from Keycloak) to exchange for a dashboard session."""


class LoginOptions(BaseModel):
    local_users: bool
    """Username and password login is possible (a local users file is configured)."""
    sso: bool
    """"Sign in with SSO" is possible: `GET /api/auth/oidc/start` begins it."""


class Me(BaseModel):
    subject: str
    roles: list[str]
    via: str


def _me(who: Principal) -> Me:
    return Me(subject=who.subject, roles=sorted(who.roles), via=who.via)


@router.post("/login", summary="Open a dashboard session (local user or bearer token)",
             responses={401: error_answer("Wrong username or password, or a token that is not valid"),
                        403: error_answer("The account has no LCM role"),
                        429: error_answer("Too many attempts from this address, for this account from this "
                                          "address, or overall; `Retry-After` says when to retry"),
                        **UNAVAILABLE})
async def login(body: LoginBody, request: Request, response: Response, cp: CP) -> Me:
    # Throttled by the connection's address (uvicorn resolves X-Forwarded-For only from trusted proxies).
    address = request.client.host if request.client else "unknown"
    account = body.username if not body.token else None
    if not body.token and not (body.username and body.password):
        raise HTTPException(422, "give username and password, or token")
    cp.logins.admit(address, account)
    who: Principal | None = None
    if body.token:
        try:
            who = await cp.tokens.verify(body.token)
        except AuthenticationError as exc:
            cp.logins.failed(address, None)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, exc.message) from exc
    elif body.username and body.password:
        who = await cp.local_users.authenticate(body.username, body.password)
    if who is None:
        cp.logins.failed(address, account)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    cp.logins.succeeded(address, account)
    if not who.roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account has no LCM role (admin or viewer)")
    await _open_session(response, cp, who)
    return _me(Principal(who.subject, who.roles, "session"))


def _secure(cp: ControlPlane) -> bool:
    settings = cp.settings
    return settings.cookie_secure if settings.cookie_secure is not None else settings.environment == "production"


async def _open_session(response: Response, cp: ControlPlane, who: Principal) -> None:
    response.set_cookie(SessionStore.COOKIE, await cp.sessions.open(who), max_age=cp.sessions.ttl_seconds,
                        httponly=True, samesite="strict", secure=_secure(cp), path="/")


@router.get("/options", summary="How one may log in to the dashboard (public: no data)")
async def login_options(cp: CP) -> LoginOptions:
    return LoginOptions(local_users=cp.local_users.configured, sso=cp.oidc.enabled)


def _redirect_uri(request: Request, cp: ControlPlane) -> str:
    return cp.settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


def _back_to_dashboard(error: str | None = None) -> RedirectResponse:
    return RedirectResponse("/" + (f"?login_error={error}" if error else ""), status_code=303)


@sso_router.get("/start")
async def oidc_start(request: Request, cp: CP) -> RedirectResponse:
    """Redirect the browser to the identity provider (authorization code + PKCE)."""
    try:
        url, flow = await cp.oidc.begin(_redirect_uri(request, cp))
    except AuthenticationError as exc:
        logger.warning("dashboard single sign-on unavailable: %s", exc.message)
        return _back_to_dashboard("sso_unavailable")
    response = RedirectResponse(url, status_code=303)
    # Lax, not Strict: it must come back with the identity provider's (cross-site) redirect to the callback.
    response.set_cookie(OidcLogin.COOKIE, flow, max_age=FLOW_SECONDS, httponly=True, samesite="lax",
                        secure=_secure(cp), path="/api/auth/oidc")
    return response


@sso_router.get("/callback", name="oidc_callback")
async def oidc_callback(
    request: Request, cp: CP,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> RedirectResponse:
    """The identity provider sends the browser back here: exchange the code, open a session, go to `/`."""
    if error or not code or not state:
        logger.info("dashboard single sign-on not granted: %s", error or "no code")
        response = _back_to_dashboard("sso_denied")
    else:
        try:
            token = await cp.oidc.complete(code, state, request.cookies.get(OidcLogin.COOKIE))
            who = await cp.tokens.verify(token)
        except AuthenticationError as exc:
            logger.warning("dashboard single sign-on failed: %s", exc.message)
            response = _back_to_dashboard("sso_failed")
        else:
            response = _back_to_dashboard(None if who.roles else "no_role")
            if who.roles:
                await _open_session(response, cp, who)
    response.delete_cookie(OidcLogin.COOKIE, path="/api/auth/oidc")
    return response


@router.post("/logout", status_code=204, summary="Close the dashboard session (it ends on the server too)")
async def logout(request: Request, response: Response, cp: CP,
                 _who: Annotated[Principal, Depends(principal)]) -> Response:
    cookie = request.cookies.get(SessionStore.COOKIE)
    if cookie:
        await cp.sessions.close(cookie)
    response.delete_cookie(SessionStore.COOKIE, path="/")
    response.status_code = 204
    return response


@router.get("/me", summary="Who is logged in, with which roles")
async def me(who: Annotated[Principal, Depends(principal)]) -> Me:
    return _me(who)
