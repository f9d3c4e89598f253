"""Fault injection of the CML simulator, seen by a real HTTP client over real sockets."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from lcm_core.testing.cml_simulator.malform import MalformedMode, malform
from tests.fixtures.cml_simulator import CmlSimulator, new_instance_id


def test_host_down_resets_the_connection(cml_simulator_clean: CmlSimulator) -> None:
    sim, host, healthy = cml_simulator_clean, new_instance_id(), new_instance_id()
    sim.set_fault(host, down=True)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{sim.api_url(host)}/system_information")
    assert httpx.get(f"{sim.api_url(healthy)}/system_information").status_code == 200
    assert httpx.get(f"{sim.url}/_admin/health").status_code == 200  # the admin API is never faulted

    sim.set_fault(host, down=True, down_mode="503")
    response = httpx.get(f"{sim.api_url(host)}/system_information")
    assert response.status_code == 503
    assert response.json()["code"] == 503

    sim.clear_fault(host)
    assert httpx.get(f"{sim.api_url(host)}/system_information").status_code == 200


def test_errors_latency_and_countdown(cml_simulator_clean: CmlSimulator) -> None:
    sim, host = cml_simulator_clean, new_instance_id()
    url = f"{sim.api_url(host)}/system_information"
    sim.set_fault(host, error_rate=1.0, error_status=502, remaining=2)
    assert [httpx.get(url).status_code for _ in range(3)] == [502, 502, 200]
    assert sim.faults()["hosts"] == {}  # spent

    sim.set_fault(host, error_rate=0.5, seed=7)
    codes = [httpx.get(url).status_code for _ in range(40)]
    assert 5 <= codes.count(500) <= 35
    assert codes.count(200) + codes.count(500) == 40

    sim.set_fault(host, latency_ms=300)
    started = time.monotonic()
    assert httpx.get(url).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_hang_outlasts_the_client_timeout(cml_simulator_clean: CmlSimulator) -> None:
    sim, host = cml_simulator_clean, new_instance_id()
    url = f"{sim.api_url(host)}/system_information"
    sim.set_fault(host, timeout_rate=1.0, hang_seconds=30)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, timeout=0.3)
    assert time.monotonic() - started < 2

    sim.set_fault(host, timeout_rate=1.0, hang_seconds=0.2)
    assert httpx.get(url, timeout=5).status_code == 504


def test_global_fault_scoped_by_endpoint_and_overridden_per_host(cml_simulator_clean: CmlSimulator) -> None:
    sim = cml_simulator_clean
    first, second = new_instance_id(), new_instance_id()
    sim.set_fault(None, error_rate=1.0, endpoints=["system_stats", "labs/*/state"], methods=["GET"])
    with sim.api(first) as api:  # /authenticate is outside the fault's endpoints
        assert api.get("/system_stats").status_code == 500
        assert api.get("/system_health").status_code == 200
        assert api.get("/labs/some-lab/state").status_code == 500
    sim.set_fault(second, latency_ms=1)  # a host's own fault replaces the global one for that host
    with sim.api(second) as api:
        assert api.get("/system_stats").status_code == 200
    sim.reset_faults()
    assert sim.faults() == {"global": None, "hosts": {}}


def test_malformed_system_stats(cml_simulator_clean: CmlSimulator) -> None:
    sim, host = cml_simulator_clean, new_instance_id()
    with sim.api(host) as api:
        good = api.get("/system_stats").json()
        sim.set_fault(host, malformed="missing_keys", endpoints=["system_stats"])
        assert set(api.get("/system_stats").json()) == {"computes", "controller"}
        assert api.get("/system_health").json()["valid"] is True  # other endpoints untouched

        sim.set_fault(host, malformed="nulls", endpoints=["system_stats"])
        nulls = api.get("/system_stats").json()
        assert nulls["all"]["cpu"] == {"count": None, "percent": None}

        sim.set_fault(host, malformed="wrong_types", endpoints=["system_stats"])
        assert api.get("/system_stats").json()["all"]["cpu"]["count"] == str(good["all"]["cpu"]["count"])

        sim.set_fault(host, malformed="wrong_top_level", endpoints=["system_stats"])
        assert isinstance(api.get("/system_stats").json(), list)

        for mode in ("non_json", "truncated", "empty"):
            sim.set_fault(host, malformed=mode, endpoints=["system_stats"])
            response = api.get("/system_stats")
            assert response.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                response.json()


def test_invalid_fault_is_rejected(cml_simulator_clean: CmlSimulator) -> None:
    response = httpx.put(f"{cml_simulator_clean.url}/_admin/faults", json={"error_rate": 2})
    assert response.status_code == 400
    response = httpx.put(f"{cml_simulator_clean.url}/_admin/faults", json={"unknown": True})
    assert response.status_code == 400


def test_malform_is_deterministic() -> None:
    body = json.dumps({"a": 1, "b": {"c": "x", "d": True}, "e": [1.5, None]}).encode()
    assert json.loads(malform(MalformedMode.MISSING_KEYS, body)[0]) == {"a": 1, "e": [1.5, None]}
    assert json.loads(malform(MalformedMode.WRONG_TYPES, body)[0]) == {"a": "1", "b": {"c": 1, "d": "yes"},
                                                                       "e": ["1.5", {}]}
    assert malform(MalformedMode.NON_JSON, body)[1].startswith("text/html")
