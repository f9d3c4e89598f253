"""What a discovery reads back without reading the fleet: the import reply's controller views and the
inventory check (`POST /api/internal/workers/unseen`), against real MongoDB-wire, Redis and etcd."""

from __future__ import annotations

from typing import Any

from tests.fixtures.control_plane import discovered
from tests.fixtures.metrics import post_reports, report

#: What the worker-controller decides from (`WorkerView`): no telemetry, no history, no idle state.
CONTROLLER_VIEW_KEYS = {
    "id", "name", "aws_region", "aws_instance_id", "template_name", "status", "status_changed_at", "sessions",
    "desired_status",
    "desired_changed_at", "service_status", "cml_version", "health_status", "private_ip", "public_ip", "license",
    "refresh_requested_at", "version"}


def _import(cp: Any, *instances: dict[str, Any]) -> dict[str, Any]:
    with cp.client() as http:
        response = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                             json={"instances": list(instances)})
    assert response.status_code == 200, response.text
    return response.json()


def _unseen(cp: Any, *numbers: int) -> list[dict[str, Any]]:
    with cp.client() as http:
        response = http.post("/api/internal/workers/unseen", headers=cp.internal(),
                             json={"aws_instance_ids": [discovered(n)["aws_instance_id"] for n in numbers]})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_the_import_reply_gives_every_imported_worker_as_stored(control_plane) -> None:
    first = _import(control_plane, discovered(1), discovered(2, state="stopped"))
    again = _import(control_plane, discovered(1), discovered(2, state="running", private_ip="10.9.9.9"),
                    discovered(3))

    assert {w["aws_instance_id"] for w in first["workers"]} == {discovered(n)["aws_instance_id"] for n in (1, 2)}
    views = {w["aws_instance_id"]: w for w in again["workers"]}
    assert set(views) == {discovered(n)["aws_instance_id"] for n in (1, 2, 3)}
    assert all(set(view) == CONTROLLER_VIEW_KEYS for view in views.values())
    changed = views[discovered(2)["aws_instance_id"]]
    assert changed["private_ip"] == "10.9.9.9"
    assert changed["id"] in again["updated"]
    assert views[discovered(3)["aws_instance_id"]]["id"] in again["created"]
    with control_plane.client() as http:
        stored = {w["id"]: w for w in http.get("/api/workers", headers=control_plane.viewer()).json()["items"]}
    for view in views.values():  # the reply is what the next version-checked write must name
        assert view["version"] == stored[view["id"]]["version"]
        assert view["status"] == stored[view["id"]]["status"]
        assert view["license"]["status"] == stored[view["id"]]["license_status"]


def test_unseen_names_the_workers_a_discovery_did_not_see(control_plane) -> None:
    created = _import(control_plane, discovered(1), discovered(2, "us-west-2"), discovered(3), discovered(4))
    ids = {w["aws_instance_id"]: w["id"] for w in created["workers"]}
    gone = ids[discovered(4)["aws_instance_id"]]
    with control_plane.client() as http:
        terminated = http.post(f"/api/internal/workers/{gone}/status", headers=control_plane.leader(),
                               json={"ec2_state": "terminated"})
        assert terminated.status_code == 200
        assert http.post("/api/templates", headers=control_plane.admin(), json={
            "name": "small", "instance_type": "m5zn.metal", "ami_name_pattern": "CML-2.9.*",
            "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500, "max_nodes": 200}}).status_code == 201
        template = http.post("/api/workers", headers=control_plane.admin(),
                             json={"template_name": "small", "aws_region": "us-east-1"})
        assert template.status_code == 201, template.text

    unseen = _unseen(control_plane, 1)

    assert sorted(w["aws_instance_id"] for w in unseen) == sorted(discovered(n)["aws_instance_id"] for n in (2, 3))
    assert all(w["status"] == "running" for w in unseen)
    # a worker with no instance yet is the reconciler's, never unseen
    assert template.json()["id"] not in {w["id"] for w in unseen}
    assert _unseen(control_plane, 1, 2, 3) == []


def test_unseen_needs_the_api_key_and_a_valid_body(control_plane) -> None:
    with control_plane.client() as http:
        anonymous = http.post("/api/internal/workers/unseen", json={"aws_instance_ids": []})
        viewer = http.post("/api/internal/workers/unseen", headers=control_plane.viewer(),
                           json={"aws_instance_ids": []})
        not_a_list = http.post("/api/internal/workers/unseen", headers=control_plane.internal(),
                               json={"aws_instance_ids": "i-1"})
        empty_id = http.post("/api/internal/workers/unseen", headers=control_plane.internal(),
                             json={"aws_instance_ids": [""]})
        unknown_field = http.post("/api/internal/workers/unseen", headers=control_plane.internal(),
                                  json={"aws_instance_ids": [], "region": "us-east-1"})
    assert anonymous.status_code == 401
    assert viewer.status_code == 401
    assert not_a_list.status_code == empty_id.status_code == unknown_field.status_code == 422


def test_a_metrics_batch_projects_every_licence_change_to_etcd_in_batches(control_plane) -> None:
    workers = _import(control_plane, *(discovered(n) for n in range(300)))["workers"]
    licensed = {"license": {"registration_status": "COMPLETED", "authorization_status": "IN_COMPLIANCE"}}
    with control_plane.client() as http:  # 300 licence changes: more than one etcd transaction
        outcome = post_reports(control_plane, http, *(report(w["id"], cml=licensed) for w in workers))
    assert len(outcome["updated"]) == 300

    for view in workers[::37] + workers[-1:]:
        projected = control_plane.etcd_json(f"workers/{view['id']}/license")
        assert projected is not None, view["id"]
        assert projected["worker_id"] == view["id"]
        assert projected["status"] == "registered"
