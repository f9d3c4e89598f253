"""ControlPlaneClient against a real HTTP server on loopback."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lcm_core.control_plane_client import ControlPlaneClient, ControlPlaneRejectedError
from lcm_core.errors import ConflictError, InvalidError, NotFoundError, UnavailableError
from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.processes import free_port

calls: Counter[str] = Counter()
seen_headers: list[dict[str, str]] = []


def build_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/status/{code}/{path}", methods=["GET", "POST"])
    async def status(code: int, path: str, request: Request) -> JSONResponse:
        calls[path] += 1
        seen_headers.append(dict(request.headers))
        return JSONResponse({"detail": f"answer {code}"}, status_code=code)

    @app.post("/flaky/{path}")
    async def flaky(path: str) -> JSONResponse:
        calls[path] += 1
        if calls[path] < 3:
            return JSONResponse({"detail": "try later"}, status_code=503)
        return JSONResponse({"ok": True, "attempt": calls[path]})

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        seen_headers.append(dict(request.headers))
        return {"body": await request.json()}

    return app


@pytest.fixture(scope="module")
def server_url():
    with serve_in_thread(build_app()) as url:
        yield url


@pytest.fixture
def client_factory(server_url):
    def make(**kwargs) -> ControlPlaneClient:
        kwargs.setdefault("backoff_base", 0.01)
        client = ControlPlaneClient(kwargs.pop("base_url", server_url), "k-123456", **kwargs)
        return client

    return make


async def test_sends_api_key_and_epoch_on_mutations(client_factory) -> None:
    client = client_factory(epoch_provider=lambda: 42)
    assert await client.post("/echo", {"a": 1}) == {"body": {"a": 1}}
    assert seen_headers[-1]["x-api-key"] == "k-123456"
    assert seen_headers[-1]["x-lcm-leader-epoch"] == "42"
    await client.aclose()


async def test_no_epoch_header_when_not_leading(client_factory) -> None:
    client = client_factory(epoch_provider=lambda: None)
    await client.post("/echo", {})
    assert "x-lcm-leader-epoch" not in seen_headers[-1]
    await client.aclose()


async def test_retries_5xx_with_backoff_then_succeeds(client_factory) -> None:
    client = client_factory(max_attempts=4)
    assert await client.post("/flaky/a") == {"ok": True, "attempt": 3}
    assert calls["a"] == 3
    await client.aclose()


async def test_gives_up_after_max_attempts_with_unavailable(client_factory) -> None:
    client = client_factory(max_attempts=3)
    with pytest.raises(UnavailableError, match="after 3 attempts"):
        await client.post("/status/502/b")
    assert calls["b"] == 3
    await client.aclose()


@pytest.mark.parametrize(
    ("code", "error"),
    [(404, NotFoundError), (409, ConflictError), (422, InvalidError), (401, ControlPlaneRejectedError),
     (403, ControlPlaneRejectedError), (400, ControlPlaneRejectedError)],
)
async def test_4xx_is_never_retried(client_factory, code: int, error: type[Exception]) -> None:
    client = client_factory(max_attempts=4)
    path = f"c{code}"
    with pytest.raises(error, match=f"answer {code}"):
        await client.post(f"/status/{code}/{path}")
    assert calls[path] == 1
    await client.aclose()


async def test_connection_refused_is_retried_then_unavailable(client_factory) -> None:
    client = client_factory(base_url=f"http://127.0.0.1:{free_port()}", max_attempts=2)
    with pytest.raises(UnavailableError, match="ConnectError"):
        await client.get("/anything")
    await client.aclose()
