"""The CML simulator over real sockets: auth, per-id determinism, lab/node state machine, utilisation,
node tags and licensing. Fault injection is in test_cml_simulator_faults.py, virl2-client in
test_cml_simulator_virl2.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lcm_core.testing.cml_simulator.profile import host_profile
from tests.fixtures.cml_simulator import CmlSimulator, new_instance_id

LAB_YAML = (Path(__file__).parents[2] / "fixtures" / "cml" / "lab.yaml").read_text()


def wait_until(probe: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def dominfo(api: httpx.Client) -> dict[str, int]:
    """dominfo summed over the computes (a host may have one to three)."""
    computes = api.get("/system_stats").json()["computes"].values()
    keys = ("allocated_cpus", "allocated_memory", "total_nodes", "running_nodes")
    return {key: sum(compute["stats"]["dominfo"][key] for compute in computes) for key in keys}


def import_demo(api: httpx.Client, title: str = "demo") -> str:
    response = api.post("/import", params={"title": title}, content=LAB_YAML)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "warnings"}
    lab_id: str = body["id"]
    return lab_id


# ---- auth ----------------------------------------------------------------------------------------


def test_admin_health(cml_simulator: CmlSimulator) -> None:
    assert httpx.get(f"{cml_simulator.url}/_admin/health").json() == {"status": "ok"}


def test_authentication(cml_simulator: CmlSimulator) -> None:
    host = new_instance_id()
    api = cml_simulator.api_url(host)
    assert httpx.get(f"{api}/system_information").status_code == 200  # the one unauthenticated read

    missing = httpx.get(f"{api}/system_stats")
    assert missing.status_code == 401
    assert set(missing.json()) == {"code", "description"}
    assert httpx.get(f"{api}/labs", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401

    bad = httpx.post(f"{api}/authenticate", json={"username": cml_simulator.username, "password": "wrong"})
    assert bad.status_code == 403
    assert bad.json()["code"] == 403

    token = cml_simulator.token(host)
    assert isinstance(token, str)
    assert token.count(".") == 2
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{api}/authok", headers=auth).json() == "OK"
    assert httpx.get(f"{api}/system_stats", headers=auth).status_code == 200
    extended = httpx.post(f"{api}/auth_extended", json={"username": cml_simulator.username,
                                                         "password": cml_simulator.password}).json()
    assert extended["admin"] is True
    assert extended["error"] is None
    assert extended["token"].count(".") == 2

    # A token is bound to its host, and dies with its session.
    other = cml_simulator.api_url(new_instance_id())
    assert httpx.get(f"{other}/system_stats", headers=auth).status_code == 401
    assert cml_simulator.revoke_tokens(host) >= 1
    assert httpx.get(f"{api}/system_stats", headers=auth).status_code == 401
    fresh = {"Authorization": f"Bearer {cml_simulator.token(host)}"}
    assert httpx.delete(f"{api}/logout", headers=fresh).json() is True
    assert httpx.get(f"{api}/authok", headers=fresh).status_code == 401


# ---- determinism ---------------------------------------------------------------------------------


def test_hosts_are_deterministic_per_instance_id(cml_simulator: CmlSimulator) -> None:
    first, second = new_instance_id(), new_instance_id()
    with cml_simulator.api(first) as api:
        info, stats = api.get("/system_information").json(), api.get("/system_stats").json()
        health = api.get("/system_health").json()
    assert info["ready"] is True
    assert info["version"].startswith("2.9.")
    assert set(stats) == {"computes", "all", "controller"}
    assert set(health["computes"]) == set(stats["computes"])
    assert 1 <= len(stats["computes"]) <= 3
    controllers = [c for c in stats["computes"].values() if c["is_controller"]]
    assert len(controllers) == 1
    assert set(controllers[0]["stats"]) == {"cpu", "memory", "disk", "dominfo"}
    assert stats["all"]["cpu"]["count"] == sum(c["stats"]["cpu"]["count"] for c in stats["computes"].values())

    # Forgetting the host and asking again gives the same host (as after a simulator restart).
    cml_simulator.forget_host(first)
    with cml_simulator.api(first) as api:
        assert api.get("/system_information").json() == info
        assert api.get("/system_stats").json() == stats
    assert host_profile(first) == host_profile(first)
    assert cml_simulator.host_info(first)["profile"]["computes"][0]["id"] in stats["computes"]

    profiles = {host_profile(new_instance_id()) for _ in range(20)} | {host_profile(second)}
    assert len({p.computes[0].id for p in profiles}) == len(profiles)
    assert len({p.computes[0].hostname for p in profiles}) > 1
    assert any(len(p.computes) > 1 for p in (host_profile(f"i-{n:017x}") for n in range(40)))


# ---- labs, nodes, utilisation --------------------------------------------------------------------


def test_lab_lifecycle_state_machine_and_utilisation(cml_simulator: CmlSimulator) -> None:
    with cml_simulator.api(new_instance_id()) as api:
        idle = dominfo(api)
        assert idle == {"allocated_cpus": 0, "allocated_memory": 0, "total_nodes": 0, "running_nodes": 0}
        idle_memory = api.get("/system_stats").json()["all"]["memory"]["used"]

        lab_id = import_demo(api)
        assert api.get("/labs").json() == [lab_id]
        lab = api.get(f"/labs/{lab_id}").json()
        assert (lab["lab_title"], lab["state"], lab["node_count"], lab["link_count"]) == ("demo", "DEFINED_ON_CORE",
                                                                                          2, 1)
        assert api.put(f"/labs/{lab_id}/start").status_code == 204
        assert api.get(f"/labs/{lab_id}/state").json() == "STARTED"
        nodes = api.get(f"/labs/{lab_id}/nodes", params={"data": "true"}).json()
        assert {node["state"] for node in nodes} <= {"QUEUED", "STARTED"}
        assert api.get(f"/labs/{lab_id}/check_if_converged").json() is False

        # iosv (1 CPU, 768 MiB) + ubuntu (1 CPU, 2048 MiB) by their definitions' defaults.
        running = dominfo(api)
        assert running == {"allocated_cpus": 2, "allocated_memory": 768 + 2048, "total_nodes": 2,
                           "running_nodes": 2}
        used = api.get("/system_stats").json()["all"]["memory"]["used"]
        assert used == idle_memory + (768 + 2048) * 1024**2

        wait_until(lambda: api.get(f"/labs/{lab_id}/check_if_converged").json(), timeout=5)
        nodes = api.get(f"/labs/{lab_id}/nodes", params={"data": "true"}).json()
        assert [node["state"] for node in nodes] == ["BOOTED", "BOOTED"]
        r1 = next(node for node in nodes if node["label"] == "r1")
        assert (r1["cpus"], r1["ram"], r1["cpu_limit"], r1["tags"]) == (1, 768, 100, ["serial:4566"])
        assert r1["compute_id"] in api.get("/system_stats").json()["computes"]
        interfaces = api.get(f"/labs/{lab_id}/nodes/{r1['id']}/interfaces", params={"data": "true"}).json()
        assert [iface["label"] for iface in interfaces] == ["Loopback0", "GigabitEthernet0/0"]
        assert all(iface["state"] == "STARTED" for iface in interfaces)
        links = api.get(f"/labs/{lab_id}/links", params={"data": "true"}).json()
        assert links[0]["state"] == "STARTED"
        assert links[0]["interface_a"] == interfaces[1]["id"]
        stats = api.get(f"/labs/{lab_id}/simulation_stats").json()
        assert set(stats["nodes"]) == {node["id"] for node in nodes}
        assert set(stats["links"]) == {links[0]["id"]}

        # Deleting or wiping a running lab is refused.
        assert api.delete(f"/labs/{lab_id}").status_code == 400
        assert api.put(f"/labs/{lab_id}/wipe").status_code == 400

        assert api.put(f"/labs/{lab_id}/stop").status_code == 204
        assert api.get(f"/labs/{lab_id}/state").json() == "STOPPED"
        assert dominfo(api) == {"allocated_cpus": 0, "allocated_memory": 0, "total_nodes": 2, "running_nodes": 0}
        assert api.put(f"/labs/{lab_id}/wipe").status_code == 204
        assert api.get(f"/labs/{lab_id}/state").json() == "DEFINED_ON_CORE"
        assert dominfo(api) == idle

        assert api.delete(f"/labs/{lab_id}").status_code == 204
        missing = api.get(f"/labs/{lab_id}")
        assert missing.status_code == 404
        assert f"Lab not found: {lab_id}" in missing.json()["description"]
        assert api.get("/labs").json() == []
        categories = [event["category"] for event in api.get("/telemetry/events").json()]
        assert categories[0] == "import_lab"
        assert {"start_lab", "queue_node", "start_node", "boot_node", "stop_lab", "wipe_node"} <= set(categories)


def test_node_patch_tags_and_node_start(cml_simulator: CmlSimulator) -> None:
    with cml_simulator.api(new_instance_id()) as api:
        lab_id = import_demo(api)
        node_id = api.get(f"/labs/{lab_id}/nodes").json()[0]
        patched = api.patch(f"/labs/{lab_id}/nodes/{node_id}", params={"exclude_configurations": "false"},
                            json={"tags": ["serial:4566", "serial:5041"]})
        assert patched.json() == node_id
        node = api.get(f"/labs/{lab_id}/nodes/{node_id}").json()
        assert node["tags"] == ["serial:4566", "serial:5041"]
        assert api.patch(f"/labs/{lab_id}/nodes/{node_id}", json={"tags": ["x" * 65]}).status_code == 400
        assert api.patch(f"/labs/{lab_id}/nodes/{node_id}", json={"bogus": 1}).status_code == 400
        assert api.get(f"/labs/{lab_id}/nodes/{node_id[:-4]}0000").status_code == 400

        assert api.put(f"/labs/{lab_id}/nodes/{node_id}/state/start").status_code == 204
        assert api.get(f"/labs/{lab_id}/state").json() == "STARTED"
        assert dominfo(api)["running_nodes"] == 1
        assert api.patch(f"/labs/{lab_id}/nodes/{node_id}", json={"ram": 4096}).status_code == 400
        wait_until(lambda: api.get(f"/labs/{lab_id}/nodes/{node_id}/state").json()["state"] == "BOOTED")
        assert api.get(f"/labs/{lab_id}/nodes/{node_id}/state").json()["progress"] == "Booted"


def test_import_errors(cml_simulator: CmlSimulator) -> None:
    with cml_simulator.api(new_instance_id()) as api:
        for body in ("- just a list", "lab: {version: 0.3.0}\nnodes: []", "lab: {version: 9.9}\nnodes: []\nlinks: []",
                     LAB_YAML.replace("i2: i0", "i2: i9")):
            response = api.post("/import", content=body)
            assert response.status_code == 400, body
            assert response.json()["code"] == 400
        warned = api.post("/import", content=LAB_YAML.replace("node_definition: ubuntu", "node_definition: mystery"))
        assert warned.status_code == 200
        assert len(warned.json()["warnings"]) == 1


@pytest.mark.parametrize("reachable", [True, False])
def test_licensing_register_and_deregister(cml_simulator: CmlSimulator, reachable: bool) -> None:
    host = new_instance_id()
    cml_simulator.configure_host(host, registration_seconds=0.2, ssms_reachable=reachable)
    with cml_simulator.api(host) as api:
        status = api.get("/licensing").json()
        assert (status["registration"]["status"], status["authorization"]["status"]) == ("COMPLETED",
                                                                                         "IN_COMPLIANCE")
        assert api.get("/system_health").json()["is_licensed"] is True
        assert api.delete("/licensing/deregistration").status_code == (204 if reachable else 202)
        assert api.delete("/licensing/deregistration").status_code == 400
        status = api.get("/licensing").json()
        assert (status["registration"]["status"], status["authorization"]["status"]) == ("NOT_REGISTERED",
                                                                                         "EVAL_MODE")
        assert api.get("/system_health").json()["is_licensed"] is False

        assert api.post("/licensing/registration", json={"token": "bad token!"}).status_code == 400
        assert api.post("/licensing/registration", json={"token": "abc123=="}).status_code == 204
        assert api.get("/licensing").json()["registration"]["status"] == "IN_PROGRESS"
        expected = "COMPLETED" if reachable else "NOT_REGISTERED"
        wait_until(lambda: api.get("/licensing").json()["registration"]["status"] == expected)
        if reachable:
            assert api.post("/licensing/registration", json={"token": "abc123"}).status_code == 409
            assert api.put("/licensing/authorization/renew").status_code == 204
        else:
            assert api.get("/licensing").json()["registration"]["register_time"]["success"] == "FAILED"


def test_host_settings_and_error_bodies(cml_simulator: CmlSimulator) -> None:
    host = new_instance_id()
    cml_simulator.configure_host(host, ready=False)
    with cml_simulator.api(host) as api:
        assert api.get("/system_information").json()["ready"] is False
        health = api.get("/system_health").json()
        assert health["valid"] is False
        assert {c["admission_state"] for c in health["computes"].values()} == {"ONLINE"}
        lab_id = import_demo(api)
        refused = api.put(f"/labs/{lab_id}/start")
        assert refused.status_code == 400
        assert refused.json()["code"] == 400

        cml_simulator.configure_host(host, ready=True, boot_seconds=0)
        assert api.put(f"/labs/{lab_id}/start").status_code == 204
        assert api.get(f"/labs/{lab_id}/check_if_converged").json() is True
        assert cml_simulator.host_info(host)["running_nodes"] == 2

        unknown = api.get("/no_such_endpoint")
        assert unknown.status_code == 404
        assert set(unknown.json()) == {"code", "description"}
        assert api.post("/labs", json={"title": ""}).status_code == 400
        created = api.post("/labs", json={"title": "empty"})
        assert created.status_code == 200
        assert created.json()["lab_title"] == "empty"


def test_deregistration_is_refused_while_nodes_run(cml_simulator: CmlSimulator) -> None:
    host = new_instance_id()
    with cml_simulator.api(host) as api:
        lab_id = import_demo(api)
        assert api.put(f"/labs/{lab_id}/start").status_code in (200, 204)
        refused = api.delete("/licensing/deregistration")
        assert refused.status_code == 409
        assert "running" in refused.json()["description"]
        assert api.get("/licensing").json()["registration"]["status"] == "COMPLETED"
        assert api.put(f"/labs/{lab_id}/stop").status_code in (200, 204)
        assert api.delete("/licensing/deregistration").status_code == 204
