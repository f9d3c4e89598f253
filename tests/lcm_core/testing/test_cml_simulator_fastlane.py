"""The simulator's fast lane answers its hot endpoints exactly as the FastAPI routes do, faults included.

One simulator state is served twice over real sockets: by the served stack (faults → fast lane → FastAPI)
and by faults → FastAPI alone. The clock is frozen so that both give the same bytes, and every request is
sent to both. Each uvicorn server runs its own event loop in its own thread; the state is shared but the
tests send one request at a time, so nothing runs concurrently on it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Header
from starlette.types import ASGIApp, Receive, Scope, Send

from lcm_core.testing.asgi_server import serve_in_thread
from lcm_core.testing.cml_simulator import SimulatorConfig, create_fastapi, routes_system
from lcm_core.testing.cml_simulator.app import HOT_ENDPOINTS, ROUTERS
from lcm_core.testing.cml_simulator.auth import AnyHost, AuthedHost
from lcm_core.testing.cml_simulator.fastlane import FastLane
from lcm_core.testing.cml_simulator.faults import FaultMiddleware
from tests.fixtures.cml_simulator import new_instance_id

USERNAME, PASSWORD = "admin", "fast-lane-pass"
NOW = 1_790_000_000.0
LAB_YAML = (Path(__file__).parents[2] / "fixtures" / "cml" / "lab.yaml").read_text()


class PassedOn:
    """Records the requests the fast lane hands to FastAPI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@dataclass
class Lanes:
    fast: str
    plain: str
    passed_on: PassedOn

    def both(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
        """The same request to the served stack and to FastAPI alone."""
        fast = httpx.request(method, f"{self.fast}{path}", timeout=5.0, **kwargs)
        plain = httpx.request(method, f"{self.plain}{path}", timeout=5.0, **kwargs)
        return fast, plain

    def same(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Assert both answer the same status, content type and body bytes; the fast lane's answer."""
        fast, plain = self.both(method, path, **kwargs)
        assert (fast.status_code, fast.headers.get("content-type"), fast.content) == \
               (plain.status_code, plain.headers.get("content-type"), plain.content), f"{method} {path}"
        assert fast.headers.get("content-length") == plain.headers.get("content-length")
        return fast

    def token(self, instance_id: str) -> str:
        response = httpx.post(f"{self.fast}/hosts/{instance_id}/api/v0/authenticate",
                              json={"username": USERNAME, "password": PASSWORD})
        assert response.status_code == 200
        token: str = response.json()
        return token

    def admin_host_ids(self) -> set[str]:
        return {host["instance_id"] for host in httpx.get(f"{self.plain}/_admin/hosts").json()}


@pytest.fixture(scope="module")
def lanes() -> Iterator[Lanes]:
    api = create_fastapi(SimulatorConfig(username=USERNAME, password=PASSWORD, clock=lambda: NOW))
    lane = FastLane(api, ROUTERS, HOT_ENDPOINTS)
    passed_on = lane.app = PassedOn(lane.app)
    with serve_in_thread(FaultMiddleware(lane, api.state.faults)) as fast, \
            serve_in_thread(FaultMiddleware(api, api.state.faults)) as plain:
        yield Lanes(fast, plain, passed_on)


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return result


def test_hot_endpoints_answer_as_fastapi(lanes: Lanes) -> None:
    host = new_instance_id()
    api = f"/hosts/{host}/api/v0"
    before = len(lanes.passed_on.paths)

    # A new host is created by its first request, even an unauthorised one (as FastAPI's dependency does).
    assert httpx.get(f"{lanes.fast}{api}/system_stats").status_code == 401
    assert host in lanes.admin_host_ids()
    assert lanes.same("GET", f"{api}/system_stats").status_code == 401
    assert lanes.same("GET", f"{api}/system_information").status_code == 200

    fast, plain = lanes.both("POST", f"{api}/authenticate", json={"username": USERNAME, "password": PASSWORD})
    assert (fast.status_code, fast.headers["content-type"]) == (plain.status_code, plain.headers["content-type"])
    assert fast.status_code == 200
    tokens = [fast.json(), plain.json()]
    assert {key: value for key, value in claims(tokens[0]).items() if key != "jti"} == \
           {key: value for key, value in claims(tokens[1]).items() if key != "jti"}
    for token in tokens:  # one state: each lane's token is good on both
        auth = {"Authorization": f"Bearer {token}"}
        for path in ("authok", "system_stats", "system_health", "licensing", "labs", "labs?show_all=true",
                     "labs?show_all=false", "labs?show_all=true&unknown=1", "telemetry/events"):
            assert lanes.same("GET", f"{api}/{path}", headers=auth).status_code == 200, path
    assert lanes.passed_on.paths[before:] == [], "the hot requests must not reach FastAPI"

    # With a started lab, the lists and counters are no longer empty.
    auth = {"Authorization": f"Bearer {tokens[0]}"}
    lab_id = httpx.post(f"{lanes.plain}{api}/import", content=LAB_YAML, headers=auth).json()["id"]
    assert httpx.put(f"{lanes.plain}{api}/labs/{lab_id}/start", headers=auth).status_code == 204
    assert lanes.same("GET", f"{api}/labs?show_all=true", headers=auth).json() == [lab_id]
    assert lanes.same("GET", f"{api}/telemetry/events", headers=auth).json()
    running = lanes.same("GET", f"{api}/system_stats", headers=auth).json()
    assert sum(compute["stats"]["dominfo"]["running_nodes"] for compute in running["computes"].values()) > 0


def test_auth_errors_answer_as_fastapi(lanes: Lanes) -> None:
    host, other = new_instance_id(), new_instance_id()
    api = f"/hosts/{host}/api/v0"
    before = len(lanes.passed_on.paths)
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Bearer"},
                    {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": f"Bearer {lanes.token(other)}"}):
        for path in ("authok", "system_stats", "system_health", "licensing", "labs?show_all=true",
                     "telemetry/events"):
            answer = lanes.same("GET", f"{api}/{path}", headers=headers)
            assert answer.status_code == 401
            assert set(answer.json()) == {"code", "description"}

    def authenticate(**kwargs: Any) -> httpx.Response:
        return lanes.same("POST", f"{api}/authenticate", **kwargs)

    assert authenticate(json={"username": USERNAME, "password": "wrong"}).json() == \
           {"code": 403, "description": "Authentication failed!"}
    assert authenticate(json={"username": "x" * 33, "password": PASSWORD}).status_code == 400
    assert authenticate(json=[USERNAME, PASSWORD]).status_code == 400
    assert authenticate().status_code == 400  # no body
    assert authenticate(content=b'{"username": ').json()["description"].startswith("Request body is not valid JSON")
    assert lanes.passed_on.paths[before:] == []


def test_what_the_lane_does_not_answer_goes_to_fastapi(lanes: Lanes) -> None:
    host = new_instance_id()
    api = f"/hosts/{host}/api/v0"
    auth = {"Authorization": f"Bearer {lanes.token(host)}"}
    before = len(lanes.passed_on.paths)
    cases = [("GET", "labs?show_all=maybe", 400), ("GET", "labs?show_all=1", 200),
             ("GET", "labs?show_all=true&show_all=false", 200), ("GET", "system_stats/", 307),
             ("PUT", "system_stats", 405), ("GET", "authenticate", 405), ("GET", "system/compute_hosts", 200)]
    for method, path, status in cases:
        assert lanes.same(method, f"{api}/{path}", headers=auth, follow_redirects=False).status_code == status
    assert len(lanes.passed_on.paths[before:]) == len(cases)


def test_faults_apply_to_the_fast_lane(lanes: Lanes) -> None:
    host = new_instance_id()
    api = f"/hosts/{host}/api/v0"
    auth = {"Authorization": f"Bearer {lanes.token(host)}"}
    before = len(lanes.passed_on.paths)

    def fault(**spec: Any) -> None:
        assert httpx.put(f"{lanes.plain}/_admin/hosts/{host}/faults", json=spec).status_code == 200

    fault(error_rate=1.0, error_status=502)
    assert lanes.same("GET", f"{api}/system_stats", headers=auth).json() == \
           {"code": 502, "description": "Simulated fault: injected error"}
    fault(down=True, down_mode="503")
    assert lanes.same("GET", f"{api}/system_information").status_code == 503
    fault(malformed="nulls", endpoints=["system_stats", "licensing"])
    stats = lanes.same("GET", f"{api}/system_stats", headers=auth).json()
    assert stats["all"]["cpu"] == {"count": None, "percent": None}
    assert lanes.same("GET", f"{api}/licensing", headers=auth).json()["registration"]["status"] is None
    fault(malformed="truncated")
    truncated = lanes.same("GET", f"{api}/system_health", headers=auth)
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert httpx.delete(f"{lanes.plain}/_admin/hosts/{host}/faults").status_code == 204
    assert lanes.same("GET", f"{api}/system_health", headers=auth).json()["valid"] is True
    assert lanes.passed_on.paths[before:] == []


def test_hot_routes_stay_documented(lanes: Lanes) -> None:
    paths = httpx.get(f"{lanes.fast}/_admin/openapi.json").json()["paths"]
    for suffix, method in (("authenticate", "post"), ("system_stats", "get"), ("labs", "get"),
                           ("licensing", "get"), ("telemetry/events", "get")):
        assert method in paths[f"/hosts/{{instance_id}}/api/v0/{suffix}"]


def test_the_lane_refuses_routes_it_could_not_answer_as_fastapi() -> None:
    api, prefix = create_fastapi(), "/hosts/{instance_id}/api/v0"
    catch_all, odd = APIRouter(prefix=prefix), APIRouter(prefix=prefix)

    @catch_all.get("/{anything}")
    async def anything(anything: str) -> dict[str, Any]:
        return {}

    @odd.get("/sync")
    def sync(host: AnyHost) -> dict[str, Any]:
        return {}

    @odd.get("/header")
    async def header(host: AuthedHost, x_trace: str = Header()) -> dict[str, Any]:
        return {}

    with pytest.raises(TypeError, match="shadowed"):
        FastLane(api, [catch_all, *ROUTERS], HOT_ENDPOINTS)
    with pytest.raises(TypeError, match="not async"):
        FastLane(api, [odd], [sync])
    with pytest.raises(TypeError, match="x_trace"):
        FastLane(api, [odd], [header])
    with pytest.raises(TypeError, match="no route"):
        FastLane(api, [odd], [routes_system.system_stats])
