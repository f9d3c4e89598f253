"""Per-host state shared by every call of one `CmlClient`: cached tokens and concurrency limits.

A fleet of ~2,000 hosts is polled through one `httpx.AsyncClient`; what differs per host is only the token
and how many requests may be in flight against it. Both live here, keyed by the normalised base URL.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


def host_key(base_url: str) -> str:
    """The normalised base URL used as the per-host key (no surrounding blanks, no trailing slash)."""
    return base_url.strip().rstrip("/")


@functools.lru_cache(maxsize=16384)
def host_label(base_url: str) -> str:
    """The base URL as shown in logs and errors: any `user:password@` part removed.

    Cached: the same few thousand hosts are labelled on every request of every cycle, and parsing a URL
    each time showed in the client's profile."""
    url = httpx.URL(host_key(base_url))
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


#: Refresh a token this long before its `exp` claim, so a request never races the expiry.
EXPIRY_MARGIN_SECONDS = 60.0


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a JWT, read without verification; None if it has none.

    Only used to refresh a token before CML rejects it (saving a 401 round trip); the signature is CML's
    business, and an unreadable token is simply used until it earns a 401.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


@dataclass(slots=True)
class _CachedToken:
    token: str
    expires_at: float | None


@dataclass
class TokenCache:
    """Bearer tokens per host, with one authentication in flight per host at a time.

    Without the per-host lock, the four concurrent telemetry calls of a cold host would each POST
    `/authenticate`; with it, the first authenticates and the others reuse its token.
    """

    clock: Callable[[], float] = time.time
    margin: float = EXPIRY_MARGIN_SECONDS
    _tokens: dict[str, _CachedToken] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def get(self, host: str) -> str | None:
        """The cached token of `host` unless it is about to expire."""
        cached = self._tokens.get(host)
        if cached is None:
            return None
        if cached.expires_at is not None and cached.expires_at - self.margin <= self.clock():
            del self._tokens[host]
            return None
        return cached.token

    def put(self, host: str, token: str) -> None:
        self._tokens[host] = _CachedToken(token, jwt_expiry(token))

    def invalidate(self, host: str, token: str | None = None) -> None:
        """Drop the token of `host` — only if it is still `token`, so a fresher one is never thrown away."""
        cached = self._tokens.get(host)
        if cached is not None and (token is None or cached.token == token):
            del self._tokens[host]

    def lock(self, host: str) -> asyncio.Lock:
        lock = self._locks.get(host)
        if lock is None:
            lock = self._locks[host] = asyncio.Lock()
        return lock

    def __contains__(self, host: object) -> bool:
        return host in self._tokens

    def __len__(self) -> int:
        return len(self._tokens)


class ConcurrencyLimiter:
    """A fleet-wide bound on in-flight requests plus a smaller bound per host.

    The global bound protects the poller (sockets, memory) when 2,000 hosts are polled at once; the
    per-host bound keeps one CML controller from being hit by every coroutine that happens to want it.
    A slot is held only while one HTTP exchange is on the wire, never across retries or back-off sleeps.
    """

    def __init__(self, max_in_flight: int, max_per_host: int) -> None:
        if max_in_flight < 1 or max_per_host < 1:
            raise ValueError("concurrency limits must be at least 1")
        self.max_in_flight = max_in_flight
        self.max_per_host = max_per_host
        self._global = asyncio.Semaphore(max_in_flight)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self.in_flight = 0
        self.peak_in_flight = 0

    def _host_semaphore(self, host: str) -> asyncio.Semaphore:
        sem = self._per_host.get(host)
        if sem is None:
            sem = self._per_host[host] = asyncio.Semaphore(self.max_per_host)
        return sem

    def slot(self, host: str) -> _Slot:
        """Hold one per-host slot and one global slot (per-host first, so a busy host never hogs globals)."""
        return _Slot(self, self._host_semaphore(host))


class _Slot:
    """`async with limiter.slot(host)`: a plain class rather than an `asynccontextmanager` generator, which
    cost a measurable share of the client's CPU at ~12,000 requests per cycle."""

    __slots__ = ("_host", "_limiter")

    def __init__(self, limiter: ConcurrencyLimiter, host: asyncio.Semaphore) -> None:
        self._limiter = limiter
        self._host = host

    async def __aenter__(self) -> None:
        await self._host.acquire()
        try:
            await self._limiter._global.acquire()
        except BaseException:
            self._host.release()
            raise
        limiter = self._limiter
        limiter.in_flight += 1
        if limiter.in_flight > limiter.peak_in_flight:
            limiter.peak_in_flight = limiter.in_flight

    async def __aexit__(self, *exc: object) -> None:
        self._limiter.in_flight -= 1
        self._limiter._global.release()
        self._host.release()
