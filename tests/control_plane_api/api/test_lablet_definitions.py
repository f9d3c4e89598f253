"""Lablet definitions against a real CPA: from topology YAML, versions, activation, internal view."""

from __future__ import annotations

from tests.fixtures.lablet_api import SAMPLE_TOPOLOGY, create_definition, ready_workers, timeslot


def test_definition_from_a_topology_derives_ports_and_resources(control_plane) -> None:
    cp = control_plane
    definition = create_definition(cp, activate=False, max_duration_minutes=90)
    assert (definition["status"], definition["version"], definition["lab_track"]) == ("draft", 1, "ccna")
    assert [(p["name"], p["template_port"]) for p in definition["port_template"]] == [
        ("R1_serial", 5041), ("R2_serial", 5042), ("PC_serial", 5043), ("PC_vnc", 5044)]
    assert definition["resource_requirements"] == {"cpu_cores": 3, "memory_gb": 2.5, "storage_gb": 10,
                                                   "node_count": 3}
    assert definition["topology_title"] == "ccna-basic"
    with cp.client() as http:
        duplicate = http.post("/api/lablet-definitions", headers=cp.admin(),
                              json={"name": "ccna-basic", "lab_topology_yaml": SAMPLE_TOPOLOGY})
        assert duplicate.status_code == 409
        assert "already exists" in duplicate.json()["detail"]
        retried = http.post("/api/lablet-definitions", headers=cp.admin(), json={
            "name": "ccna-basic", "lab_topology_yaml": SAMPLE_TOPOLOGY, "lab_track": "ccna",
            "max_duration_minutes": 90})
        assert retried.status_code == 201
        assert (retried.json()["id"], retried.json()["version"]) == (definition["id"], 1)
        draft_session = http.post("/api/lablet-sessions", headers=cp.admin(),
                                  json={"definition_id": definition["id"], **timeslot()})
        assert draft_session.status_code == 409
        assert "draft" in draft_session.json()["detail"]
        activated = http.post(f"/api/lablet-definitions/{definition['id']}/activate", headers=cp.admin())
        assert activated.json()["status"] == "active"
        assert http.post(f"/api/lablet-definitions/{definition['id']}/activate",
                         headers=cp.admin()).json()["revision"] == activated.json()["revision"]
        too_long = http.post("/api/lablet-sessions", headers=cp.admin(),
                             json={"definition_id": definition["id"], **timeslot(minutes=120)})
        assert too_long.status_code == 422
        assert "90 minutes" in too_long.text
        listed = http.get("/api/lablet-definitions", headers=cp.viewer(), params={"status": "active"}).json()
        assert [d["id"] for d in listed["items"]] == [definition["id"]]
        assert "lab_topology_yaml" not in listed["items"][0]
        assert http.get("/api/lablet-definitions", headers=cp.viewer(),
                        params={"status": "bogus"}).status_code == 422


def test_malformed_topology_is_a_422_naming_the_problem(control_plane) -> None:
    cp = control_plane
    cases = {
        "lab: {title: x}\nnodes: [\n": "not parseable as YAML at line",
        "lab: {}\nnodes: [{id: n0, label: R1, node_definition: iosv, y: 0}]\nlinks: []\n": "node 'R1': x is required",
        "just a string": "must be a mapping",
    }
    with cp.client() as http:
        for text, message in cases.items():
            answer = http.post("/api/lablet-definitions", headers=cp.admin(),
                               json={"name": "broken", "lab_topology_yaml": text})
            assert answer.status_code == 422, answer.text
            assert any(message in item["msg"] for item in answer.json()["detail"]), answer.text
        assert http.post("/api/lablet-definitions", headers=cp.admin(),
                         json={"name": "x", "lab_topology_yaml": SAMPLE_TOPOLOGY, "extra": 1}).status_code == 422


def test_update_makes_a_new_version_and_keeps_the_old_one(control_plane) -> None:
    cp = control_plane
    definition = create_definition(cp)
    edited = SAMPLE_TOPOLOGY.replace("tags: [serial:5042]", "tags: [serial:5042, vnc:5045]")
    with cp.client() as http:
        path = f"/api/lablet-definitions/{definition['id']}"
        stale = http.put(path, headers=cp.admin(), json={"version": 7, "lab_topology_yaml": edited})
        assert stale.status_code == 409
        updated = http.put(path, headers=cp.admin(), json={"version": 1, "lab_topology_yaml": edited}).json()
        assert updated["version"] == 2
        assert "R2_vnc" in [p["name"] for p in updated["port_template"]]
        assert http.put(path, headers=cp.admin(),
                        json={"version": 2, "lab_topology_yaml": edited}).json()["version"] == 2  # no change
        old = http.get(path, headers=cp.viewer(), params={"version": 1}).json()
        assert "R2_vnc" not in [p["name"] for p in old["port_template"]]
        assert [v["version"] for v in http.get(f"{path}/versions", headers=cp.viewer()).json()] == [1, 2]
        internal = http.get(f"/api/internal/lablet-definitions/{definition['id']}", headers=cp.internal(),
                            params={"version": 1}).json()
        assert internal["lab_topology_yaml"] == SAMPLE_TOPOLOGY
        assert internal["version"] == 1
        assert http.get(path, headers=cp.viewer(), params={"version": 9}).status_code == 404
        session = http.post("/api/lablet-sessions", headers=cp.admin(),
                            json={"definition_id": definition["id"], **timeslot()}).json()
        assert session["definition_version"] == 2
        deactivated = http.post(f"{path}/deactivate", headers=cp.admin()).json()
        assert deactivated["status"] == "inactive"
        assert http.post("/api/lablet-sessions", headers=cp.admin(),
                         json={"definition_id": definition["id"], **timeslot()}).status_code == 409


def test_worker_lab_track_is_set_by_admins_and_shown_to_the_scheduler(control_plane) -> None:
    cp = control_plane
    [worker_id] = ready_workers(cp, 1)
    with cp.client() as http:
        path = f"/api/workers/{worker_id}/lab-track"
        assert http.put(path, headers=cp.viewer(), json={"lab_track": "ccna"}).status_code == 403
        assert http.put(path, headers=cp.admin(), json={"lab_track": "bad track!"}).status_code == 422
        assert http.put(path, headers=cp.admin(), json={"lab_track": "ccna"}).json()["lab_track"] == "ccna"
        brief = http.get("/api/internal/workers", headers=cp.internal(), params={"view": "brief"}).json()["items"][0]
    assert brief["lab_track"] == "ccna"
    assert brief["capacity"]["declared"]["cpu_cores"] == 48
    assert (brief["status"], brief["service_status"], brief["license_status"]) == (
        "running", "available", "unregistered")
    assert "labs_count" in brief


def test_a_topology_cml_would_refuse_is_a_422_not_a_stored_definition(control_plane) -> None:
    cp = control_plane
    no_version = SAMPLE_TOPOLOGY.replace("  version: 0.3.0\n", "")
    assert no_version != SAMPLE_TOPOLOGY
    numeric_config = SAMPLE_TOPOLOGY.replace("    configuration: []\n", "    configuration: 42\n", 1)
    assert numeric_config != SAMPLE_TOPOLOGY
    with cp.client() as http:
        for text, message in ((no_version, "lab.version"), (numeric_config, "configuration must be text")):
            answer = http.post("/api/lablet-definitions", headers=cp.admin(),
                               json={"name": "refused", "lab_topology_yaml": text})
            assert answer.status_code == 422, answer.text
            assert any(message in item["msg"] for item in answer.json()["detail"]), answer.text
        listed = http.get("/api/lablet-definitions", headers=cp.viewer()).json()
    assert listed["items"] == []
