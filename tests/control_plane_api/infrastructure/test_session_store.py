"""Sessions when Redis cannot be reached: an `UnavailableError` (503), never a pass or a crash; a forged cookie
is refused from its signature alone, without asking Redis."""

from __future__ import annotations

import jwt
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from control_plane_api.infrastructure.identity import AuthenticationError, Principal, SessionStore
from lcm_core.errors import UnavailableError
from lcm_core.testing.processes import free_port


async def test_an_unreachable_session_store_is_unavailable_not_unauthenticated() -> None:
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5,
                  retry=Retry(NoBackoff(), 0))
    store = SessionStore(redis, "secret-0123456789", 60, prefix="lcm:test:sessions")
    try:
        with pytest.raises(UnavailableError):
            await store.open(Principal("alice", frozenset({"admin"}), "session"))
        with pytest.raises(AuthenticationError):
            await store.read("not-a-signed-cookie")
        # A correctly signed cookie whose session cannot be looked up: unavailable, not "logged out".
        signed = jwt.encode({"sid": "s1", "sub": "alice", "exp": 2_000_000_000, "typ": "lcm-session"},
                            store._secret, algorithm="HS256")
        with pytest.raises(UnavailableError):
            await store.read(signed)
        with pytest.raises(UnavailableError):
            await store.revoke("alice")
    finally:
        await redis.aclose()
