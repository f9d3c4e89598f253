"""collect_cml_telemetry and fleet collection: snapshot contents, partial failure, concurrency bounds."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from lcm_core.cml import (
    CmlAuthError,
    CmlClient,
    CmlTelemetrySnapshot,
    CmlUnreachableError,
    collect_cml_telemetry,
    collect_fleet_telemetry,
)
from lcm_core.domain.workers import CloudWatchSample, WorkerMetricsReport, utilisation
from lcm_core.testing.cml_simulator.malform import MalformedMode, malform

C0 = "435a7bac-882a-4edd-a8f3-f4ea9307cb52"
C2 = "e2b7c0d4-55f1-4a3b-8e6d-0c9a1b2d3e4f"
NOW = datetime(2026, 2, 10, 12, 0, tzinfo=UTC)

Loader = Callable[[str], Any]


def api(host: str, path: str) -> str:
    return f"{host}/api/v0{path}"


def serve_host(mock: respx.MockRouter, host: str, load: Loader, **overrides: Any) -> dict[str, respx.Route]:
    """Mock every telemetry endpoint of one host with the recorded fixtures (overridable per endpoint)."""
    bodies: dict[str, Any] = {
        "/system_information": httpx.Response(200, json=load("system_information.json")),
        "/system_stats": httpx.Response(200, json=load("system_stats.json")),
        "/system_health": httpx.Response(200, json=load("system_health.json")),
        "/licensing": httpx.Response(200, json=load("licensing.json")),
        "/labs": httpx.Response(200, json=load("labs.json")),
        "/telemetry/events": httpx.Response(200, json=load("telemetry_events.json")),
    }
    for path, value in overrides.items():
        bodies["/" + path.replace("__", "/")] = value
    routes = {"/authenticate": mock.post(api(host, "/authenticate")).respond(json="tok-" + host[-4:])}
    for path, value in bodies.items():
        route = mock.get(api(host, path))
        if isinstance(value, httpx.Response):
            route.mock(return_value=value)
        else:
            route.mock(side_effect=value)
        routes[path] = route
    return routes


def warnings_of(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_recorded_host_snapshot(client: CmlClient, mock: respx.MockRouter, host: str, load: Loader,
                                      caplog: pytest.LogCaptureFixture) -> None:
    routes = serve_host(mock, host, load)
    snap = await collect_cml_telemetry(client, host, now=NOW)
    assert not warnings_of(caplog)
    assert (snap.errors, snap.warnings) == ({}, [])
    assert (snap.host, snap.collected_at, snap.version, snap.ready) == (host, NOW, "2.9.0+build.3", True)
    assert (snap.all_cpu_count, snap.all_cpu_percent, snap.running_nodes, snap.total_nodes) == (48, 0.49, 0, 2)
    assert snap.controller_disk_used == 137775804416
    assert (snap.health_valid, snap.is_licensed, snap.is_enterprise, snap.controller_valid) == (True,) * 4
    assert snap.labs_count == 2
    assert snap.license is not None
    assert snap.license.node_limit == 520
    # the one derivation of utilisation, from the snapshot as it travels
    used = utilisation(snap, None)
    assert (used.cpu_percent, used.cpu_source) == (0.5, "cml")
    assert used.memory_percent == round(2033487872 / 202422902784 * 100, 1)
    assert used.disk_percent == round(137792577536 / 266206101504 * 100, 1)
    # stats and health of the compute are merged
    node = snap.computes[C0]
    assert (node.cpu_count, node.admission_state, node.kvm_vmx_enabled, node.healthy) == (48, "READY", True, True)
    assert routes["/authenticate"].call_count == 1
    assert routes["/telemetry/events"].call_count == 0  # only with include_activity


async def test_the_snapshot_is_the_report_the_control_plane_validates(
        client: CmlClient, mock: respx.MockRouter, host: str, load: Loader) -> None:
    serve_host(mock, host, load)
    snap = await collect_cml_telemetry(client, host)
    body = WorkerMetricsReport(worker_id="w1", collected_at=NOW, cml=snap).model_dump(mode="json")
    assert WorkerMetricsReport.model_validate(body).cml == snap
    compute = snap.computes[C0]
    assert (compute.total_nodes, compute.admission_state) == (2, "READY")
    assert snap.all_memory_total == 202422902784
    assert snap.allocated_cpus == 0
    assert (snap.controller_core_connected, snap.controller_valid) == (True, True)
    assert snap.license is not None
    assert (snap.license.registration_status, snap.license.product_license) == ("COMPLETED", "CML_Enterprise")
    assert snap.license.expires == datetime(2027, 1, 14, 0, 56, 19, tzinfo=UTC)


async def test_report_matches_the_control_plane_contract(client: CmlClient, mock: respx.MockRouter, host: str,
                                                         load: Loader) -> None:
    serve_host(mock, host, load, system_health=httpx.Response(503))
    snap = await collect_cml_telemetry(client, host, include_activity=True)
    assert snap.all_cpu_count == 48
    assert snap.health_valid is None  # failed endpoint: its fields are empty, and it is named
    assert "system_health" in snap.errors
    assert snap.license is not None
    assert snap.license.node_limit == 520
    assert snap.last_activity_at == datetime(2026, 2, 10, 9, 22, 5, tzinfo=UTC)


async def test_several_computes_merge_stats_and_health(client: CmlClient, mock: respx.MockRouter, host: str,
                                                       load: Loader) -> None:
    serve_host(mock, host, load,
               system_stats=httpx.Response(200, json=load("system_stats_multi_compute.json")),
               system_health=httpx.Response(200, json=load("system_health_multi_compute.json")),
               licensing=httpx.Response(200, json=load("licensing_full.json")))
    snap = await collect_cml_telemetry(client, host)
    assert snap.compute_count == 3
    assert (snap.running_nodes, snap.allocated_cpus) == (23, 64)
    assert snap.health_valid is False
    bad = snap.computes[C2]
    assert (bad.hostname, bad.cpu_count, bad.admission_state, bad.healthy) == ("cml-compute-2", 96, "REGISTERED",
                                                                               False)
    assert snap.license is not None
    assert snap.license.node_limit == 520
    assert utilisation(snap, None).memory_percent == round(548 / 960 * 100, 1)


async def test_not_ready_unlicensed_host(client: CmlClient, mock: respx.MockRouter, host: str,
                                         load: Loader) -> None:
    serve_host(mock, host, load,
               system_information=httpx.Response(200, json=load("system_information_not_ready.json")),
               system_stats=httpx.Response(200, json=load("system_stats_not_ready.json")),
               system_health=httpx.Response(200, json=load("system_health_not_ready.json")),
               licensing=httpx.Response(200, json=load("licensing_unregistered.json")),
               labs=httpx.Response(200, json=[]))
    snap = await collect_cml_telemetry(client, host)
    assert snap.ready is False
    assert snap.labs_count == 0
    used = utilisation(snap, None)
    assert (used.memory_percent, used.disk_percent, used.cpu_percent) == (None, None, 0.0)
    assert snap.running_nodes is None
    assert list(snap.computes) == [C0]  # known from system_health only
    assert snap.computes[C0].cpu_count is None
    assert snap.computes[C0].admission_state == "ONLINE"
    assert snap.license is not None
    assert (snap.license.registration_status, snap.license.node_limit) == ("NOT_REGISTERED", None)
    assert snap.is_licensed is False


async def test_one_failing_endpoint_is_partial(client: CmlClient, mock: respx.MockRouter, host: str,
                                               load: Loader, caplog: pytest.LogCaptureFixture) -> None:
    serve_host(mock, host, load, system_health=httpx.Response(500, json={"code": 500, "description": "boom"}),
               licensing=httpx.ReadTimeout("slow"))
    snap = await collect_cml_telemetry(client, host)
    assert set(snap.errors) == {"system_health", "licensing"}
    assert "CmlUnreachableError" in snap.errors["system_health"]
    assert (snap.health_valid, snap.is_licensed, snap.license) == (None, None, None)
    assert snap.computes[C0].admission_state is None
    assert snap.all_cpu_count == 48
    assert snap.labs_count == 2
    text = warnings_of(caplog)
    assert "system_health failed" in text
    assert "licensing failed" in text


async def test_malformed_bodies_are_partial(client: CmlClient, mock: respx.MockRouter, host: str, load: Loader,
                                            caplog: pytest.LogCaptureFixture) -> None:
    serve_host(mock, host, load,
               system_stats=httpx.Response(200, text="<html>oops</html>"),
               system_health=httpx.Response(200, json=["not", "an", "object"]),
               licensing=httpx.Response(200, json=load("licensing_odd.json")))
    snap = await collect_cml_telemetry(client, host)
    assert "CmlResponseError" in snap.errors["system_stats"]
    # Answered, but nothing in it could be read: a failure of the endpoint, not a report of empty values.
    assert snap.errors["system_health"] == "malformed answer: none of its values could be read"
    assert snap.errors["licensing"] == snap.errors["system_health"]  # neither status is readable
    assert snap.all_cpu_count is None
    assert snap.health_valid is None
    assert any("system_health: body is a JSON array" in w for w in snap.warnings)
    assert any("'authorization' is missing" in w for w in snap.warnings)
    assert snap.version == "2.9.0+build.3"
    assert set(snap.errors) == {"system_stats", "system_health", "licensing"}
    assert snap.license is None
    assert "system_stats failed" in warnings_of(caplog)
    assert "system_health answered, but none of its values could be read" in warnings_of(caplog)


@pytest.mark.parametrize("mode", ["nulls", "wrong_types", "wrong_top_level", "non_json", "truncated", "empty"])
async def test_a_malformed_stats_or_health_answer_is_a_failed_source(client: CmlClient, mock: respx.MockRouter,
                                                                     host: str, load: Loader, mode: str) -> None:
    """The simulator's `malformed` fault damages bodies these ways: none may pass for a healthy, empty host."""
    damaged = {}
    for name in ("system_stats", "system_health"):
        body, content_type = malform(MalformedMode(mode), json.dumps(load(f"{name}.json")).encode())
        damaged[name] = httpx.Response(200, content=body, headers={"content-type": content_type})
    serve_host(mock, host, load, **damaged)
    snap = await collect_cml_telemetry(client, host)
    assert {"system_stats", "system_health"} <= set(snap.errors)
    assert (snap.all_cpu_percent, snap.all_memory_used, snap.health_valid, snap.computes) == (None, None, None, {})
    assert utilisation(snap, None).memory_percent is None
    assert snap.labs_count == 2  # the other endpoints are unaffected


async def test_odd_stats_give_none_and_named_warnings(client: CmlClient, mock: respx.MockRouter, host: str,
                                                      load: Loader) -> None:
    serve_host(mock, host, load, system_stats=httpx.Response(200, json=load("system_stats_wrong_types.json")))
    snap = await collect_cml_telemetry(client, host)
    assert snap.errors == {}
    assert snap.all_cpu_percent is None
    used = utilisation(snap, None)
    assert used.cpu_percent is None
    assert used.memory_percent is None  # all.memory.total unreadable
    assert used.disk_percent is None  # all.disk unreadable
    assert any("'all.cpu.percent' is not a number" in w for w in snap.warnings)
    assert snap.all_cpu_count == 48


async def test_out_of_range_percent_is_dropped(client: CmlClient, mock: respx.MockRouter, host: str,
                                               load: Loader) -> None:
    stats = load("system_stats.json")
    stats["all"]["cpu"]["percent"] = 4700.0
    stats["all"]["memory"]["used"] = stats["all"]["memory"]["total"] * 2
    serve_host(mock, host, load, system_stats=httpx.Response(200, json=stats))
    snap = await collect_cml_telemetry(client, host)
    used = utilisation(snap, None)
    assert (used.cpu_percent, used.memory_percent) == (None, None)
    assert utilisation(snap, CloudWatchSample(cpu_utilization=12.0)).cpu_percent == 12.0  # the fallback


async def test_unreachable_host_raises(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    mock.route(url__startswith=host).mock(side_effect=httpx.ConnectError("no route to host"))
    with pytest.raises(CmlUnreachableError):
        await collect_cml_telemetry(client, host)


async def test_host_down_with_502_everywhere_raises(client: CmlClient, mock: respx.MockRouter, host: str) -> None:
    mock.route(url__startswith=host).respond(502, text="Bad Gateway")
    with pytest.raises(CmlUnreachableError):
        await collect_cml_telemetry(client, host)


async def test_bad_credentials_authenticate_once_and_keep_public_fields(
        client: CmlClient, mock: respx.MockRouter, host: str, load: Loader) -> None:
    routes = serve_host(mock, host, load)
    routes["/authenticate"].respond(403, json={"code": 403, "description": "Authentication failed!"})
    snap = await collect_cml_telemetry(client, host)
    assert routes["/authenticate"].call_count == 1
    assert (snap.version, snap.ready) == ("2.9.0+build.3", True)
    assert set(snap.errors) == {"system_stats", "system_health", "licensing", "labs"}
    assert all(CmlAuthError.__name__ in why for why in snap.errors.values())


async def test_activity_from_telemetry_events(client: CmlClient, mock: respx.MockRouter, host: str,
                                              load: Loader) -> None:
    serve_host(mock, host, load)
    snap = await client.collect_cml_telemetry(host, include_activity=True)
    assert snap.last_activity_at == datetime(2026, 2, 10, 9, 22, 5, tzinfo=UTC)


async def test_fleet_collection_respects_concurrency_bounds(mock: respx.MockRouter, load: Loader) -> None:
    hosts = [f"http://127.0.0.1:9000/hosts/i-{n:04x}" for n in range(24)]
    in_flight = 0
    peak = 0
    per_host: Counter[str] = Counter()
    peak_per_host = 0
    bodies = {
        "/system_information": load("system_information.json"), "/system_stats": load("system_stats.json"),
        "/system_health": load("system_health.json"), "/licensing": load("licensing.json"),
        "/labs": load("labs.json"),
    }

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak, peak_per_host
        host = request.url.path.split("/api/v0")[0]
        in_flight += 1
        per_host[host] += 1
        peak = max(peak, in_flight)
        peak_per_host = max(peak_per_host, per_host[host])
        try:
            await asyncio.sleep(0.005)
            endpoint = request.url.path.split("/api/v0", 1)[1]
            if endpoint == "/authenticate":
                return httpx.Response(200, json="tok")
            return httpx.Response(200, json=bodies[endpoint])
        finally:
            in_flight -= 1
            per_host[host] -= 1

    mock.route(host="127.0.0.1").mock(side_effect=answer)
    async with CmlClient("admin", "pw", transport=httpx.AsyncHTTPTransport(), max_in_flight=5, max_per_host=2,
                         get_retries=0) as cml:
        results = await collect_fleet_telemetry(cml, hosts, max_hosts=8)
        assert cml.limiter.peak_in_flight <= 5
    assert set(results) == set(hosts)
    assert all(isinstance(r, CmlTelemetrySnapshot) and r.all_cpu_count == 48 for r in results.values())
    assert peak == 5  # the bound was reached, and never exceeded
    assert peak_per_host <= 2


async def test_fleet_reports_unreachable_hosts_without_failing(client: CmlClient, mock: respx.MockRouter,
                                                              load: Loader) -> None:
    good, bad = "https://cml-good.example", "https://cml-down.example"
    serve_host(mock, good, load)
    mock.route(url__startswith=bad).mock(side_effect=httpx.ConnectTimeout("timeout"))
    results = {host: result async for host, result in client.iter_fleet_telemetry([good, bad, good])}
    assert set(results) == {good, bad}
    assert isinstance(results[good], CmlTelemetrySnapshot)
    assert isinstance(results[bad], CmlUnreachableError)


async def test_hosts_arriving_while_the_fleet_is_collected_are_answered_as_they_come(
        client: CmlClient, mock: respx.MockRouter, load: Loader) -> None:
    first, second = "https://cml-1.example", "https://cml-2.example"
    for host in (first, second):
        serve_host(mock, host, load)
    answered: list[str] = []
    second_may_come = asyncio.Event()

    async def hosts() -> AsyncIterator[str]:
        yield first
        await second_may_come.wait()  # not before the first host has been answered
        yield first  # a host given twice is collected once
        yield second

    async for host, result in client.iter_fleet_telemetry(hosts()):
        assert isinstance(result, CmlTelemetrySnapshot)
        answered.append(host)
        second_may_come.set()
    assert answered == [first, second]


async def test_a_failing_host_source_fails_the_collection(client: CmlClient, mock: respx.MockRouter,
                                                          load: Loader) -> None:
    serve_host(mock, "https://cml-1.example", load)

    async def hosts() -> AsyncIterator[str]:
        yield "https://cml-1.example"
        raise RuntimeError("discovery failed")

    with pytest.raises(RuntimeError, match="discovery failed"):
        async for _ in client.iter_fleet_telemetry(hosts()):
            pass


async def test_without_information_system_information_is_not_asked(client: CmlClient, mock: respx.MockRouter,
                                                                   host: str, load: Loader) -> None:
    routes = serve_host(mock, host, load)
    snap = await collect_cml_telemetry(client, host, include_information=False, now=NOW)
    assert routes["/system_information"].call_count == 0
    assert (snap.version, snap.ready) == (None, None)  # not asked, not "not ready"
    assert snap.errors == {}
    assert snap.labs_count == 2
    assert snap.all_cpu_count == 48


async def test_without_information_a_host_down_still_raises(client: CmlClient, mock: respx.MockRouter,
                                                             host: str) -> None:
    mock.route(url__startswith=host).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(CmlUnreachableError):
        await collect_cml_telemetry(client, host, include_information=False)
