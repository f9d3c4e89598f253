"""Bearer tokens of the simulated hosts: HS256 JWTs bound to one host and one session.

Tokens carry `exp` (the LCM client refreshes before it), `host` (a token of one instance is a 401 on
another, as two real controllers would not share a signing key) and `jti`, which must still be an open
session of that host: logout and the admin "revoke tokens" call end sessions, giving a 401 that makes
clients re-authenticate. Bad credentials are 403, a missing or invalid token 401, as on CML 2.9.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Annotated, Any

from fastapi import Depends, Request

from lcm_core.testing.cml_simulator.errors import CmlError
from lcm_core.testing.cml_simulator.state import HostState, SimulatorState


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_token(host: HostState, now: float) -> str:
    """A new session token for the configured user on `host`."""
    config = host.config
    jti = str(uuid.uuid4())
    expires = now + config.token_ttl_seconds
    claims = {"iss": "virl2", "sub": host.profile.admin_user_id, "name": config.username,
              "host": host.profile.instance_id, "iat": int(now), "nbf": int(now), "exp": int(expires), "jti": jti}
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(config.secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    for stale in [key for key, until in host.sessions.items() if until <= now]:
        del host.sessions[stale]
    host.sessions[jti] = expires
    return f"{header}.{payload}.{_b64(signature)}"


def verify_token(host: HostState, token: str, now: float) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token of an open session on `host`, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = hmac.new(host.config.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _unb64(parts[2])):
            return None
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or claims.get("host") != host.profile.instance_id:
        return None
    if float(claims.get("exp", 0)) <= now or claims.get("jti") not in host.sessions:
        return None
    return claims


def check_credentials(host: HostState, body: Any) -> None:
    """403 unless `body` is `{username, password}` matching the configured user."""
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str) or not 1 <= len(body["username"]) <= 32:
        raise CmlError(400, "username (1-32 characters) and password are required")
    config = host.config
    user_ok = hmac.compare_digest(body["username"].encode(), config.username.encode())
    password_ok = hmac.compare_digest(body["password"].encode(), config.password.encode())
    if not (user_ok and password_ok):
        raise CmlError(403, "Authentication failed!")


def simulator(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


async def any_host(instance_id: str, request: Request) -> HostState:
    """The host addressed by the path, advanced to now, without checking a token.

    Dependencies are `async` so that they run on the event loop, never in FastAPI's thread pool: the
    state is not locked.
    """
    return simulator(request).host(instance_id)


async def authorized_host(instance_id: str, request: Request) -> HostState:
    """The host addressed by the path, after checking the bearer token (401 otherwise)."""
    state = simulator(request)
    host = state.host(instance_id)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CmlError(401, "No authorization token provided")
    if verify_token(host, token.strip(), state.now()) is None:
        raise CmlError(401, "Invalid or expired token")
    return host


def bearer_jti(request: Request) -> str | None:
    """The session id of the request's token (already verified by `authorized_host`)."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    try:
        claims = json.loads(_unb64(token.split(".")[1]))
    except (IndexError, ValueError):
        return None
    return claims.get("jti") if isinstance(claims, dict) else None


AnyHost = Annotated[HostState, Depends(any_host)]
AuthedHost = Annotated[HostState, Depends(authorized_host)]
