"""Per-host token cache and concurrency limiter of the CML client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import respx

from lcm_core.cml import CmlClient, CmlResponseError
from lcm_core.cml.pool import ConcurrencyLimiter, TokenCache, jwt_expiry


def test_jwt_expiry(make_jwt: Callable[..., str]) -> None:
    assert jwt_expiry(make_jwt(exp=1_900_000_000)) == 1_900_000_000.0
    assert jwt_expiry(make_jwt()) is None
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.%%%.c") is None


def test_token_cache_expiry_and_invalidation(make_jwt: Callable[..., str]) -> None:
    now = [1_000.0]
    cache = TokenCache(clock=lambda: now[0], margin=60)
    cache.put("h1", make_jwt(exp=1_100))
    cache.put("h2", "opaque-token")
    assert cache.get("h1") is not None
    now[0] = 1_041  # inside the 60 s margin before exp
    assert cache.get("h1") is None
    assert cache.get("h2") == "opaque-token"  # no exp claim: used until a 401
    cache.invalidate("h2", "some-older-token")  # a stale token never evicts a fresher one
    assert "h2" in cache
    cache.invalidate("h2", "opaque-token")
    assert "h2" not in cache
    assert len(cache) == 0


def test_token_cache_lock_is_per_host() -> None:
    cache = TokenCache()
    assert cache.lock("a") is cache.lock("a")
    assert cache.lock("a") is not cache.lock("b")


async def test_limiter_bounds_global_and_per_host() -> None:
    limiter = ConcurrencyLimiter(max_in_flight=3, max_per_host=1)
    active: dict[str, int] = {}
    worst_host = 0

    async def job(host: str) -> None:
        nonlocal worst_host
        async with limiter.slot(host):
            active[host] = active.get(host, 0) + 1
            worst_host = max(worst_host, active[host])
            await asyncio.sleep(0.002)
            active[host] -= 1

    await asyncio.gather(*(job(f"h{n % 5}") for n in range(40)))
    assert limiter.peak_in_flight == 3
    assert worst_host == 1
    assert limiter.in_flight == 0


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimiter(0, 1)


async def test_redirect_is_reported_not_followed() -> None:
    host = "http://cml-b.example"
    with respx.mock:
        respx.get(f"{host}/api/v0/system_information").respond(
            301, headers={"location": "https://cml-b.example/api/v0/system_information"})
        async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport(), get_retries=0) as cml:
            with pytest.raises(CmlResponseError, match=r"redirect to https://cml-b\.example"):
                await cml.system_information(host)


async def test_explicit_authenticate_replaces_the_token() -> None:
    host = "https://cml-c.example"
    with respx.mock:
        auth = respx.post(f"{host}/api/v0/authenticate")
        auth.side_effect = [httpx.Response(200, json="t1"), httpx.Response(200, json="t2")]
        async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport()) as cml:
            await cml.ensure_token(host)
            await cml.ensure_token(host)
            assert cml.tokens.get(host) == "t1"
            await cml.authenticate(host)
            assert cml.tokens.get(host) == "t2"
        assert auth.call_count == 2
