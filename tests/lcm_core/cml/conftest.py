"""Shared helpers of the CML client tests: recorded fixtures, fake JWTs, a client without retries."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from lcm_core.cml import CmlClient

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cml"
HOST = "https://cml-a.example"
PASSWORD = "s3cret-Passw0rd!"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture
def host() -> str:
    return HOST


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def load() -> Callable[[str], Any]:
    """Load one JSON fixture of tests/fixtures/cml by file name."""
    def _load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text())
    return _load


@pytest.fixture
def make_jwt() -> Callable[..., str]:
    """A JWT-shaped token (unsigned) with an optional `exp` claim."""
    def _make(subject: str = "admin", exp: float | None = None) -> str:
        claims: dict[str, Any] = {"sub": subject}
        if exp is not None:
            claims["exp"] = exp
        return f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"
    return _make


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[CmlClient]:
    # httpx's own transport, which respx intercepts (production uses the aiohttp one).
    async with CmlClient("admin", PASSWORD, transport=httpx.AsyncHTTPTransport(), verify_tls=False, get_retries=0,
                         max_in_flight=20, max_per_host=8) as cml:
        yield cml
