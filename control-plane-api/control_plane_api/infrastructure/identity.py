"""Who is calling: bearer JWTs (RS256 from a key file, a JWKS or OIDC discovery; Keycloak role claims),
dashboard sessions (kept in Redis, named by an HS256-signed cookie) and local users (PBKDF2 password hashes)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane_api.settings import ControlPlaneSettings
from lcm_core.errors import ConfigurationError, LcmError, TooManyRequestsError, UnavailableError
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


class SessionStore:
    """Dashboard sessions kept in Redis: the HttpOnly, SameSite=Strict cookie carries a signed session id, and
    the session itself (who, which roles) is a Redis key that expires with it. Logout deletes the key, and an
    admin can delete every session of a user, so a copied cookie stops working at once, not at its expiry.

    The signature lets forged or garbled cookies be refused without a Redis round trip. Keys live under
    `prefix` (one per installation sharing a Redis)."""

    COOKIE = "lcm_session"

    def __init__(self, redis: Redis, secret: str, ttl_seconds: int, prefix: str) -> None:
        # A fixed-length HMAC key whatever the configured secret's length.
        self._secret = hashlib.sha256(b"lcm-session:" + secret.encode()).digest()
        self._redis = redis
        self._prefix = prefix
        self.ttl_seconds = ttl_seconds

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:{session_id}"

    def _subject_key(self, subject: str) -> str:
        return f"{self._prefix}:subject:{subject}"

    async def open(self, principal: Principal) -> str:
        """Store a new session and return its cookie value."""
        session_id = secrets.token_urlsafe(32)
        record = json.dumps({"sub": principal.subject, "roles": sorted(principal.roles)})
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._key(session_id), record, ex=self.ttl_seconds)
                pipe.sadd(self._subject_key(principal.subject), session_id)
                pipe.expire(self._subject_key(principal.subject), self.ttl_seconds)
                await pipe.execute()
        except RedisError as exc:
            raise UnavailableError(f"the session store is unavailable: {type(exc).__name__}") from exc
        now = int(time.time())
        return jwt.encode({"sid": session_id, "sub": principal.subject, "iat": now, "exp": now + self.ttl_seconds,
                           "typ": "lcm-session"}, self._secret, algorithm="HS256")

    def _claims(self, cookie: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(cookie, self._secret, algorithms=["HS256"],
                                options={"require": ["exp", "sub", "sid"]})
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid session: {exc}") from exc
        if claims.get("typ") != "lcm-session" or not isinstance(claims.get("sid"), str):
            raise AuthenticationError("invalid session")
        return claims

    async def read(self, cookie: str) -> Principal:
        claims = self._claims(cookie)
        try:
            raw = await self._redis.get(self._key(claims["sid"]))
        except RedisError as exc:
            raise UnavailableError(f"the session store is unavailable: {type(exc).__name__}") from exc
        if raw is None:
            raise AuthenticationError("the session has ended (logged out, revoked or expired): log in again")
        record = json.loads(raw)
        roles = frozenset(r for r in record.get("roles", []) if r in ROLES)
        return Principal(subject=str(record["sub"]), roles=roles, via="session")

    async def close(self, cookie: str) -> None:
        """Logout: delete the cookie's session (an invalid cookie has nothing to delete)."""
        try:
            claims = self._claims(cookie)
        except AuthenticationError:
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(claims["sid"]))
                pipe.srem(self._subject_key(str(claims["sub"])), claims["sid"])
                await pipe.execute()
        except RedisError as exc:
            raise UnavailableError(f"the session store is unavailable: {type(exc).__name__}") from exc

    async def revoke(self, subject: str) -> int:
        """End every session of `subject`; returns how many were still open."""
        try:
            members = await self._redis.smembers(self._subject_key(subject))
            keys = [self._key(m.decode() if isinstance(m, bytes) else m) for m in members]
            async with self._redis.pipeline(transaction=True) as pipe:
                if keys:
                    pipe.delete(*keys)
                pipe.delete(self._subject_key(subject))
                results = await pipe.execute()
        except RedisError as exc:
            raise UnavailableError(f"the session store is unavailable: {type(exc).__name__}") from exc
        return int(results[0]) if keys else 0


_DUMMY_HASH = hash_password("unused", b"0" * 16)


class LocalUsers:
    """Users from `AUTH_LOCAL_USERS_FILE` (the local stack's admin and viewer)."""

    def __init__(self, path: str | None, concurrency: int = 2, wait_seconds: float = 2.0) -> None:
        self._users: dict[str, dict[str, Any]] = {}
        # PBKDF2 takes tens of milliseconds of CPU: on the event loop a login flood would stall every request.
        # It runs on these threads instead (hashlib releases the GIL while hashing), at most `concurrency` at
        # once; a login that cannot get a slot within `wait_seconds` is told to retry, not queued forever.
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="password-check")
        self._slots = asyncio.Semaphore(concurrency)
        self._wait_seconds = wait_seconds
        if path:
            try:
                data = json.loads(Path(path).read_text())
                self._users = {u["username"]: u for u in data["users"]}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(f"AUTH_LOCAL_USERS_FILE {path} is not a valid users file: {exc}") from exc

    @property
    def configured(self) -> bool:
        return bool(self._users)

    async def authenticate(self, username: str, password: str) -> Principal | None:
        user = self._users.get(username)
        # Hash even for unknown users so that timing does not reveal which usernames exist.
        encoded = user["password_hash"] if user else _DUMMY_HASH
        await self._take_slot()
        try:
            matches = await asyncio.get_running_loop().run_in_executor(self._executor, check_password, password,
                                                                       encoded)
        finally:
            self._slots.release()
        if not matches or user is None:
            return None
        return Principal(subject=username, roles=frozenset(user.get("roles", [])) & set(ROLES), via="session")

    async def _take_slot(self) -> None:
        # Not `wait_for(acquire())`: on Python 3.11 a timeout that races the acquisition can drop the slot it
        # took, and lost slots would end all logins. Here a slot taken after we gave up is handed back.
        acquire = asyncio.ensure_future(self._slots.acquire())
        try:
            await asyncio.wait({acquire}, timeout=self._wait_seconds)
        except BaseException:
            self._abandon(acquire)
            raise
        if not acquire.done():
            self._abandon(acquire)
            raise TooManyRequestsError("too many logins in progress; retry shortly", retry_after_seconds=1)

    def _abandon(self, acquire: asyncio.Future[Literal[True]]) -> None:
        acquire.cancel()  # does nothing when it already holds a slot: the callback then gives it back

        def give_back(done: asyncio.Future[Literal[True]]) -> None:
            if not done.cancelled() and done.exception() is None:
                self._slots.release()

        acquire.add_done_callback(give_back)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
