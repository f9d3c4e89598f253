"""CmlClient over respx: authentication, token cache, re-auth on 401, error mapping, lab operations."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from lcm_core.cml import (
    CmlAuthError,
    CmlClient,
    CmlNotFoundError,
    CmlRejectedError,
    CmlResponseError,
    CmlUnreachableError,
)
from lcm_core.errors import InvalidError, NotFoundError, UnavailableError
from lcm_core.leader.fence import LeadershipLost

LAB = "2a1a5b8e-3f4c-4d6e-9a7b-8c9d0e1f2a3b"
NODE = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
LAB_YAML = (Path(__file__).resolve().parents[2] / "fixtures" / "cml" / "lab.yaml").read_text()


def api(host: str, path: str) -> str:
    return f"{host}/api/v0{path}"


def auth_route(mock: respx.MockRouter, host: str, *tokens: str) -> respx.Route:
    route = mock.post(api(host, "/authenticate"))
    route.side_effect = [httpx.Response(200, json=token) for token in tokens]
    return route


async def test_authenticate_sends_credentials_and_uses_bearer(
        client: CmlClient, mock: respx.MockRouter, host: str, password: str, load: Callable[[str], Any]) -> None:
    auth = auth_route(mock, host, "tok-1")
    stats = mock.get(api(host, "/system_stats")).respond(json=load("system_stats.json"))
    result = await client.system_stats(host)
    assert result.all_cpu_count == 48
    assert json.loads(auth.calls.last.request.content) == {"username": "admin", "password": password}
    assert "authorization" not in auth.calls.last.request.headers
    assert stats.calls.last.request.headers["authorization"] == "Bearer tok-1"


async def test_token_is_cached_per_host(client: CmlClient, mock: respx.MockRouter, host: str,
                                        load: Callable[[str], Any]) -> None:
    other = "http://127.0.0.1:8999/hosts/i-0abc"
    auth_a = auth_route(mock, host, "tok-a")
    auth_b = auth_route(mock, other, "tok-b")
    for base in (host, other):
        mock.get(api(base, "/system_health")).respond(json=load("system_health.json"))
        mock.get(api(base, "/licensing")).respond(json=load("licensing.json"))
    for _ in range(3):
        await client.system_health(host)
        await client.licensing(host)
    await client.system_health(other + "/")  # trailing slash: same host key
    await client.licensing(other)
    assert auth_a.call_count == 1
    assert auth_b.call_count == 1
    assert len(client.tokens) == 2


async def test_concurrent_cold_calls_authenticate_once(client: CmlClient, mock: respx.MockRouter, host: str,
                                                       load: Callable[[str], Any]) -> None:
    auth = auth_route(mock, host, "tok-1")
    mock.get(api(host, "/system_health")).respond(json=load("system_health.json"))
    await asyncio.gather(*(client.system_health(host) for _ in range(6)))
    assert auth.call_count == 1


async def test_401_reauthenticates_once_and_retries(client: CmlClient, mock: respx.MockRouter, host: str,
                                                    load: Callable[[str], Any]) -> None:
    auth = auth_route(mock, host, "tok-old", "tok-new")
    route = mock.get(api(host, "/licensing"))
    route.side_effect = lambda request: (
        httpx.Response(200, json=load("licensing.json")) if request.headers["authorization"] == "Bearer tok-new"
        else httpx.Response(401, json={"code": 401, "description": "token expired"}))
    lic = await client.licensing(host)
    assert lic.registration_status == "COMPLETED"
    assert auth.call_count == 2
    assert [c.request.headers["authorization"] for c in route.calls] == ["Bearer tok-old", "Bearer tok-new"]
    await client.licensing(host)  # the fresh token is cached
    assert auth.call_count == 2


async def test_401_after_reauth_is_auth_error(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth = auth_route(mock, host, "tok-1", "tok-2", "tok-3")
    route = mock.get(api(host, "/system_stats")).respond(401, json={"code": 401, "description": "no"})
    with pytest.raises(CmlAuthError) as caught:
        await client.system_stats(host)
    assert caught.value.status_code == 401
    assert auth.call_count == 2  # re-authenticated exactly once
    assert route.call_count == 2


async def test_bad_credentials_are_auth_error(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    mock.post(api(host, "/authenticate")).respond(403, json={"code": 403, "description": "Authentication failed!"})
    with pytest.raises(CmlAuthError, match="refused the credentials of user 'admin'"):
        await client.labs_count(host)


async def test_expiring_token_is_refreshed_before_use(client: CmlClient, mock: respx.MockRouter, host: str,
                                                      make_jwt: Callable[..., str]) -> None:
    soon, later = make_jwt(exp=time.time() + 5), make_jwt(exp=time.time() + 3600)
    auth = auth_route(mock, host, soon, later)
    mock.get(api(host, "/labs")).respond(json=[])
    await client.lab_ids(host)  # gets `soon`, which is inside the refresh margin
    await client.lab_ids(host)  # so this one authenticates again
    await client.lab_ids(host)
    assert auth.call_count == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unreachable(client: CmlClient, mock: respx.MockRouter, host: str, status: int) -> None:
    mock.get(api(host, "/system_information")).respond(status, text="Bad Gateway")
    with pytest.raises(CmlUnreachableError) as caught:
        await client.system_information(host)
    assert caught.value.status_code == status
    assert isinstance(caught.value, UnavailableError)


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"),
                                   httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")])
async def test_transport_errors_are_unreachable(client: CmlClient, mock: respx.MockRouter, host: str,
                                                error: Exception) -> None:
    mock.get(api(host, "/system_information")).mock(side_effect=error)
    with pytest.raises(CmlUnreachableError, match=r"https://cml-a\.example"):
        await client.system_information(host)


async def test_get_is_retried_then_succeeds(mock: respx.MockRouter, host: str,
                                            load: Callable[[str], Any]) -> None:
    route = mock.get(api(host, "/system_information"))
    route.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=load("system_information.json"))]
    async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport(), get_retries=1, retry_backoff=0.0) as cml:
        assert (await cml.system_information(host)).ready is True
    assert route.call_count == 2


async def test_mutations_are_not_retried(mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    route = mock.put(api(host, f"/labs/{LAB}/start")).respond(503)
    async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport(), get_retries=3, retry_backoff=0.0) as cml:
        with pytest.raises(CmlUnreachableError):
            await cml.start_lab(host, LAB)
    assert route.call_count == 1


async def test_error_mapping(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    mock.get(api(host, f"/labs/{LAB}")).respond(404, json={"code": 404, "description": f"Lab not found: {LAB}"})
    mock.put(api(host, f"/labs/{LAB}/wipe")).respond(400, json={"code": 400, "description": "Lab is running"})
    mock.post(api(host, "/licensing/registration")).respond(409, json={"code": 409, "description": "busy"})
    mock.get(api(host, "/licensing")).respond(403, json={"code": 403, "description": "Access denied"})
    with pytest.raises(CmlNotFoundError, match="Lab not found") as missing:
        await client.lab(host, LAB)
    assert isinstance(missing.value, NotFoundError)
    with pytest.raises(CmlRejectedError, match="Lab is running") as rejected:
        await client.wipe_lab(host, LAB)
    assert rejected.value.status_code == 400
    with pytest.raises(CmlRejectedError) as conflict:
        await client.register_license(host, "tok-smart")
    assert conflict.value.status_code == 409
    with pytest.raises(CmlAuthError):
        await client.licensing(host)


async def test_missing_node_400_is_not_found(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    mock.get(api(host, f"/labs/{LAB}/nodes/{NODE}")).respond(400, json={"code": 400, "description": "Node not found"})
    with pytest.raises(CmlNotFoundError):
        await client.node(host, LAB, NODE)


async def test_non_json_body_is_response_error(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    mock.get(api(host, "/system_stats")).respond(200, text="<html>maintenance</html>",
                                                 headers={"content-type": "text/html"})
    with pytest.raises(CmlResponseError, match="not JSON"):
        await client.system_stats(host)


async def test_wrong_shapes_are_response_errors(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    mock.get(api(host, f"/labs/{LAB}/state")).respond(json={"state": "STARTED"})
    mock.get(api(host, f"/labs/{LAB}/nodes")).respond(json={"nodes": []})
    mock.get(api(host, f"/labs/{LAB}")).respond(json={"lab_title": "no id"})
    mock.get(api(host, "/labs")).respond(json={"labs": []})
    with pytest.raises(CmlResponseError, match="bare str"):
        await client.lab_state(host, LAB)
    with pytest.raises(CmlResponseError, match="expected a list"):
        await client.nodes(host, LAB)
    with pytest.raises(CmlResponseError, match="unexpected answer"):
        await client.lab(host, LAB)
    with pytest.raises(CmlResponseError):
        await client.lab_ids(host)


async def test_lab_lifecycle(client: CmlClient, mock: respx.MockRouter, host: str,
                             load: Callable[[str], Any]) -> None:
    auth_route(mock, host, "tok")
    imported = mock.post(api(host, "/import")).respond(json=load("import_result.json"))
    calls = {verb: mock.put(api(host, f"/labs/{LAB}/{verb}")).respond(204) for verb in ("start", "stop", "wipe")}
    deleted = mock.delete(api(host, f"/labs/{LAB}")).respond(204)
    mock.get(api(host, f"/labs/{LAB}/state")).respond(json="STARTED")
    mock.get(api(host, f"/labs/{LAB}/check_if_converged")).respond(json=True)
    mock.get(api(host, f"/labs/{LAB}")).respond(json=load("lab.json"))
    labs = mock.get(api(host, "/labs")).respond(json=load("labs.json"))

    result = await client.import_lab(host, LAB_YAML, title="lablet-ccna-101")
    assert (result.id, result.warnings) == (LAB, [])
    request = imported.calls.last.request
    assert request.url.params["title"] == "lablet-ccna-101"
    assert request.content.decode() == LAB_YAML
    assert "content-type" not in request.headers  # raw YAML text, as virl2-client posts it
    await client.start_lab(host, LAB)
    assert await client.lab_state(host, LAB) == "STARTED"
    assert await client.check_if_converged(host, LAB) is True
    assert (await client.lab(host, LAB)).lab_title == "lablet-ccna-101"
    await client.stop_lab(host, LAB)
    await client.wipe_lab(host, LAB)
    await client.delete_lab(host, LAB)
    assert all(route.call_count == 1 for route in calls.values())
    assert deleted.call_count == 1
    assert await client.labs_count(host) == 2
    assert labs.calls.last.request.url.params["show_all"] == "true"


async def test_import_title_is_validated(client: CmlClient) -> None:
    with pytest.raises(InvalidError):
        await client.import_lab("https://cml-a.example", LAB_YAML, title="x" * 65)


async def test_nodes_interfaces_links_stats(client: CmlClient, mock: respx.MockRouter, host: str,
                                            load: Callable[[str], Any]) -> None:
    auth_route(mock, host, "tok")
    nodes = mock.get(api(host, f"/labs/{LAB}/nodes")).respond(json=load("nodes.json"))
    ifaces = mock.get(api(host, f"/labs/{LAB}/nodes/{NODE}/interfaces")).respond(json=load("interfaces.json"))
    mock.get(api(host, f"/labs/{LAB}/links")).respond(json=load("links.json"))
    mock.get(api(host, f"/labs/{LAB}/simulation_stats")).respond(json=load("simulation_stats.json"))
    mock.get(api(host, f"/labs/{LAB}/nodes/{NODE}")).respond(json=load("nodes.json")[0])
    result = await client.nodes(host, LAB)
    assert [(n.label, n.cpus, n.ram, n.cpu_limit, n.state) for n in result] == [
        ("r1", 1, 768, 100, "BOOTED"), ("pc", None, None, None, "QUEUED")]
    assert nodes.calls.last.request.url.params["data"] == "true"
    assert [i.label for i in await client.interfaces(host, LAB, NODE)] == ["Loopback0", "GigabitEthernet0/0"]
    assert ifaces.calls.last.request.url.params["data"] == "true"
    assert (await client.links(host, LAB))[0].node_a == NODE
    assert (await client.simulation_stats(host, LAB)).nodes[NODE].cpu_usage == 3.25
    assert (await client.node(host, LAB, NODE)).tags == ["serial:4566"]


async def test_set_node_tags_patches_the_whole_list(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    patch = mock.patch(api(host, f"/labs/{LAB}/nodes/{NODE}")).respond(json=NODE)
    assert await client.set_node_tags(host, LAB, NODE, ["serial:4566", "vnc:5901"]) == NODE
    assert json.loads(patch.calls.last.request.content) == {"tags": ["serial:4566", "vnc:5901"]}
    assert patch.calls.last.request.url.params["exclude_configurations"] == "false"
    with pytest.raises(InvalidError):
        await client.set_node_tags(host, LAB, NODE, ["x" * 65])


async def test_licensing_register_and_deregister(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    auth_route(mock, host, "tok")
    register = mock.post(api(host, "/licensing/registration")).respond(204)
    dereg = mock.delete(api(host, "/licensing/deregistration"))
    dereg.side_effect = [httpx.Response(204), httpx.Response(202)]
    await client.register_license(host, "smart-token-123", reregister=True)
    assert json.loads(register.calls.last.request.content) == {"token": "smart-token-123", "reregister": True}
    assert await client.deregister_license(host) is True
    assert await client.deregister_license(host) is False  # 202: deregistered locally, SSMS unreachable


async def test_telemetry_events(client: CmlClient, mock: respx.MockRouter, host: str,
                                load: Callable[[str], Any]) -> None:
    auth_route(mock, host, "tok")
    mock.get(api(host, "/telemetry/events")).respond(json=load("telemetry_events.json"))
    events = await client.telemetry_events(host)
    assert len(events) == 5


async def test_system_information_needs_no_token(client: CmlClient, mock: respx.MockRouter, host: str,
                                                 load: Callable[[str], Any]) -> None:
    auth = mock.post(api(host, "/authenticate"))
    info = mock.get(api(host, "/system_information")).respond(json=load("system_information.json"))
    assert (await client.system_information(host)).version == "2.9.0+build.3"
    assert auth.call_count == 0
    assert "authorization" not in info.calls.last.request.headers


async def test_per_host_credentials(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    client.set_host_credentials(host, "operator", "other-pw")
    auth = auth_route(mock, host, "tok")
    mock.get(api(host, "/labs")).respond(json=[])
    await client.lab_ids(host)
    assert json.loads(auth.calls.last.request.content)["username"] == "operator"


async def test_secrets_never_logged_or_in_errors(client: CmlClient, mock: respx.MockRouter, host: str,
                                                 password: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lcm_core.cml")
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.secret-token-signature"
    auth_route(mock, host, token, token)
    mock.get(api(host, "/system_stats")).respond(401, json={"code": 401, "description": "expired"})
    with pytest.raises(CmlAuthError) as caught:
        await client.system_stats(host)
    mock.post(api(host, "/authenticate")).respond(403, json={"code": 403, "description": "bad"})
    client.tokens.invalidate(host)
    with pytest.raises(CmlAuthError) as refused:
        await client.system_stats(host)
    texts = [r.getMessage() for r in caplog.records] + [str(caught.value), str(refused.value),
                                                        repr(client.credentials)]
    assert caplog.records  # something was logged (debug + re-auth info)
    for text in texts:
        assert password not in text
        assert token not in text
        assert "secret-token-signature" not in text


def test_host_label_strips_userinfo() -> None:
    from lcm_core.cml import host_label

    assert host_label("https://admin:pw@10.0.0.5/") == "https://10.0.0.5"
    assert host_label("http://127.0.0.1:8080/hosts/i-abc/") == "http://127.0.0.1:8080/hosts/i-abc"


async def test_verify_tls_option_reaches_the_transport() -> None:
    async with CmlClient("admin", "pw", verify_tls=False) as insecure, CmlClient("admin", "pw") as secure:
        def mode(cml: CmlClient) -> Any:
            assert cml.ssl_context is not None
            return cml.ssl_context.verify_mode.name

        assert mode(insecure) == "CERT_NONE"
        assert mode(secure) == "CERT_REQUIRED"


async def test_echoed_secrets_are_redacted_from_errors(client: CmlClient, mock: respx.MockRouter, host: str,
                                                       password: str) -> None:
    smart_token = "NjQ5ZjA1ZGQtMWE0Ni00YzQx-secret"
    mock.post(api(host, "/authenticate")).respond(
        422, json={"code": 422, "description": f"invalid input {password!r}"})
    with pytest.raises(CmlRejectedError) as refused:
        await client.ensure_token(host)
    assert password not in str(refused.value)
    auth_route(mock, host, "tok")
    mock.post(api(host, "/licensing/registration")).respond(
        400, json={"code": 400, "description": f"token {smart_token} does not match the pattern"})
    with pytest.raises(CmlRejectedError) as rejected:
        await client.register_license(host, smart_token)
    assert smart_token not in str(rejected.value)
    assert "***" in str(rejected.value)


async def test_the_change_guard_stops_a_change_but_not_a_read_or_a_login(client: CmlClient, mock: respx.MockRouter,
                                                                         host: str, load: Callable[[str], Any]) -> None:
    auth_route(mock, host, "tok-1")
    stats = mock.get(api(host, "/system_stats")).respond(json=load("system_stats.json"))
    stop = mock.put(api(host, f"/labs/{LAB}/stop")).respond(204)
    asked: list[str] = []

    def refuse(what: str) -> None:
        asked.append(what)
        raise LeadershipLost(f"refused to {what}")

    client.change_guard = refuse
    await client.system_stats(host)  # a login (POST /authenticate) and a read go out
    with pytest.raises(LeadershipLost):
        await client.stop_lab(host, LAB)
    assert stats.called
    assert not stop.called
    assert asked == [f"send PUT /labs/{LAB}/stop to CML {host}"]
