"""The client's own wire (aiohttp, no injected transport) over real sockets: bodies, redirects, cookies and
failures map exactly as they did through httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lcm_core.cml import CmlClient, CmlResponseError, CmlUnreachableError
from lcm_core.testing.processes import free_port


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    async def authenticate(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "type": request.content_type, "body": await request.text(),
                     "cookie": request.headers.get("Cookie")})
        response = web.json_response("token-1")
        response.set_cookie("session", "should-not-come-back")
        return response

    async def labs(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "query": dict(request.query), "auth": request.headers.get("Authorization"),
                     "cookie": request.headers.get("Cookie"), "accept": request.headers.get("Accept")})
        return web.json_response(["lab-1"])

    async def imported(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "body": await request.text(), "query": dict(request.query)})
        return web.json_response({"id": "lab-2", "warnings": []})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("https://elsewhere/api/v0/labs")

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response([])

    app = web.Application()
    app.router.add_post("/a/api/v0/authenticate", authenticate)
    app.router.add_get("/a/api/v0/labs", labs)
    app.router.add_post("/a/api/v0/import", imported)
    app.router.add_post("/b/api/v0/authenticate", authenticate)
    app.router.add_get("/b/api/v0/labs", moved)
    app.router.add_get("/c/api/v0/system_information", silent)
    runner = web.AppRunner(app, shutdown_timeout=0.5)  # the silent handler is not waited for
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_requests_and_answers_round_trip(server: tuple[str, list[dict[str, object]]]) -> None:
    base, seen = server
    async with CmlClient("admin", "pw") as cml:
        assert await cml.lab_ids(f"{base}/a") == ["lab-1"]
        assert await cml.lab_ids(f"{base}/a") == ["lab-1"]  # the cached token, no second authentication
        result = await cml.import_lab(f"{base}/a", "lab:\n  title: x\n", title="t")
    assert result.id == "lab-2"
    auth, first, second, upload = seen
    assert auth["type"] == "application/json"
    assert json.loads(str(auth["body"])) == {"username": "admin", "password": "pw"}
    assert first["auth"] == "Bearer token-1"
    assert first["query"] == {"show_all": "true"}
    assert first["accept"] == "application/json"
    assert first["cookie"] is None  # bearer tokens only: cookies are not kept
    assert second["cookie"] is None
    assert upload["body"] == "lab:\n  title: x\n"
    assert upload["query"] == {"title": "t"}


async def test_a_redirect_is_not_followed(server: tuple[str, list[dict[str, object]]]) -> None:
    base, _ = server
    async with CmlClient("admin", "pw") as cml:
        with pytest.raises(CmlResponseError, match="redirect to https://elsewhere"):
            await cml.lab_ids(f"{base}/b")


async def test_a_host_that_does_not_answer_in_time_is_unreachable(server: tuple[str, list[dict[str, object]]]
                                                                  ) -> None:
    base, _ = server
    async with CmlClient("admin", "pw", timeout=0.2, get_retries=0) as cml:
        with pytest.raises(CmlUnreachableError, match="timed out"):
            await cml.system_information(f"{base}/c")


async def test_a_refused_connection_is_unreachable() -> None:
    async with CmlClient("admin", "pw", get_retries=0) as cml:
        with pytest.raises(CmlUnreachableError, match="Connect"):
            await cml.system_information(f"http://127.0.0.1:{free_port()}")
