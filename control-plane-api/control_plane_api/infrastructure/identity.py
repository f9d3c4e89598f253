"""Who is calling: bearer JWTs (RS256 from a key file, a JWKS or OIDC discovery; Keycloak role claims),
dashboard session cookies (HS256, signed by the CPA) and local users (PBKDF2 password hashes)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from control_plane_api.settings import ControlPlaneSettings
from lcm_core.errors import ConfigurationError, LcmError
from lcm_core.passwords import check_password, hash_password

logger = logging.getLogger(__name__)

ROLES = ("admin", "viewer")


class AuthenticationError(LcmError):
    code = "unauthenticated"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    via: str
    """`bearer` or `session`."""

    def has(self, role: str) -> bool:
        # An admin can do whatever a viewer can.
        return role in self.roles or (role == "viewer" and "admin" in self.roles)


def roles_from_claims(claims: dict[str, Any], client_id: str) -> frozenset[str]:
    """Keycloak puts roles under `realm_access.roles` and `resource_access.<client>.roles`."""
    found: set[str] = set()
    realm = claims.get("realm_access")
    if isinstance(realm, dict) and isinstance(realm.get("roles"), list):
        found.update(str(r) for r in realm["roles"])
    resource = claims.get("resource_access")
    if isinstance(resource, dict) and isinstance(resource.get(client_id), dict):
        found.update(str(r) for r in resource[client_id].get("roles", []) if isinstance(r, str))
    if isinstance(claims.get("roles"), list):
        found.update(str(r) for r in claims["roles"])
    return frozenset(found & set(ROLES))


class TokenVerifier:
    def __init__(self, settings: ControlPlaneSettings) -> None:
        self._settings = settings
        self._static_key: bytes | None = None
        if settings.jwt_public_key_file:
            path = Path(settings.jwt_public_key_file)
            if not path.is_file():
                raise ConfigurationError(f"AUTH_JWT_PUBLIC_KEY_FILE {path} does not exist")
            self._static_key = path.read_bytes()
        self._jwks: jwt.PyJWKClient | None = (
            jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=600) if settings.jwks_url else None
        )
        self._discovery_lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._static_key or self._jwks or self._settings.oidc_issuer)

    async def _jwks_client(self) -> jwt.PyJWKClient:
        if self._jwks is not None:
            return self._jwks
        issuer = self._settings.oidc_issuer
        if not issuer:
            raise AuthenticationError("bearer tokens are not accepted: no key, JWKS or OIDC issuer configured")
        async with self._discovery_lock:
            if self._jwks is None:
                url = issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    async with httpx.AsyncClient(timeout=5.0) as http:
                        response = await http.get(url)
                        response.raise_for_status()
                        jwks_uri = response.json()["jwks_uri"]
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    raise AuthenticationError(f"identity provider discovery failed: {exc}") from exc
                self._jwks = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=600)
        return self._jwks

    async def verify(self, token: str) -> Principal:
        settings = self._settings
        try:
            if self._static_key is not None:
                key: Any = self._static_key
            else:
                client = await self._jwks_client()
                key = (await asyncio.to_thread(client.get_signing_key_from_jwt, token)).key
            claims = jwt.decode(
                token, key, algorithms=["RS256", "ES256"],
                audience=settings.audience or None, issuer=settings.oidc_issuer or None,
                options={"require": ["exp", "sub"], "verify_aud": bool(settings.audience)},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid bearer token: {exc}") from exc
        subject = str(claims.get("preferred_username") or claims["sub"])
        return Principal(subject=subject, roles=roles_from_claims(claims, settings.client_id), via="bearer")


class SessionCodec:
    """Dashboard sessions: a short signed token in an HttpOnly, SameSite=Strict cookie."""

    COOKIE = "lcm_session"

    def __init__(self, secret: str, ttl_seconds: int) -> None:
        # A fixed-length HMAC key whatever the configured secret's length.
        self._secret = hashlib.sha256(b"lcm-session:" + secret.encode()).digest()
        self.ttl_seconds = ttl_seconds

    def issue(self, principal: Principal) -> str:
        now = int(time.time())
        return jwt.encode({"sub": principal.subject, "roles": sorted(principal.roles), "iat": now,
                           "exp": now + self.ttl_seconds, "typ": "lcm-session"}, self._secret, algorithm="HS256")

    def read(self, cookie: str) -> Principal:
        try:
            claims = jwt.decode(cookie, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid session: {exc}") from exc
        if claims.get("typ") != "lcm-session":
            raise AuthenticationError("invalid session")
        roles = frozenset(r for r in claims.get("roles", []) if r in ROLES)
        return Principal(subject=str(claims["sub"]), roles=roles, via="session")


_DUMMY_HASH = hash_password("unused", b"0" * 16)


class LocalUsers:
    """Users from `AUTH_LOCAL_USERS_FILE` (the local stack's admin and viewer)."""

    def __init__(self, path: str | None) -> None:
        self._users: dict[str, dict[str, Any]] = {}
        if path:
            try:
                data = json.loads(Path(path).read_text())
                self._users = {u["username"]: u for u in data["users"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(f"AUTH_LOCAL_USERS_FILE {path} is not a valid users file: {exc}") from exc

    @property
    def configured(self) -> bool:
        return bool(self._users)

    def authenticate(self, username: str, password: str) -> Principal | None:
        user = self._users.get(username)
        # Hash even for unknown users so that timing does not reveal which usernames exist.
        encoded = user["password_hash"] if user else _DUMMY_HASH
        if not check_password(password, encoded) or user is None:
            return None
        return Principal(subject=username, roles=frozenset(user.get("roles", [])) & set(ROLES), via="session")
