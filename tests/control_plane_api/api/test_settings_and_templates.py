"""Settings and worker templates: version-guarded writes, events, validation."""

from __future__ import annotations

from typing import Any

from tests.fixtures.sse import SseClient

TEMPLATE: dict[str, Any] = {
    "name": "standard-m5zn", "instance_type": "m5zn.metal", "ami_name_pattern": "CML-2.9.*",
    "regions": {"us-east-1": {"subnet_id": "subnet-0123456789abcdef0", "security_group_ids": ["sg-0123456789abcdef0"],
                              "iam_instance_profile": "cml-worker", "key_name": "ops"}},
    "ebs": {"volume_type": "gp3", "size_gb": 500}, "capacity": {"cpu_cores": 48, "memory_gb": 192, "storage_gb": 500,
                                                               "max_nodes": 200},
    "cost_per_hour_usd": 3.96,
}


def test_settings_changes_are_version_guarded_and_emit_an_event(control_plane) -> None:
    with SseClient(f"{control_plane.url}/api/events/stream", control_plane.viewer(),
                   params={"event_types": "settings.updated"}) as sse, control_plane.client() as http:
        sse.next()  # snapshot
        current = http.get("/api/settings", headers=control_plane.viewer()).json()
        assert current["discovery"]["ami_name_pattern"] == "CML-*"
        change = {"version": current["version"],
                  "discovery": {"regions": ["us-east-1", "eu-west-1"], "ami_name_pattern": "CML-2.9.*",
                                "enabled": True, "scan_interval_seconds": 60}}
        updated = http.put("/api/settings", headers=control_plane.admin(), json=change)
        assert updated.status_code == 200
        assert updated.json()["version"] == current["version"] + 1
        assert updated.json()["updated_by"] == "test-admin"
        stale = http.put("/api/settings", headers=control_plane.admin(), json=change)
        assert stale.status_code == 409
        bad = http.put("/api/settings", headers=control_plane.admin(),
                       json={"version": 1, "discovery": {"regions": ["mars-1"]}})
        assert bad.status_code == 422
        assert "not AWS region names: mars-1" in bad.text
        event = sse.frame(timeout=2.0)
        assert event.event == "settings.updated"
        assert event.data["data"]["sections"] == ["discovery"]
        internal = http.get("/api/internal/settings", headers=control_plane.internal()).json()
        assert internal["discovery"]["regions"] == ["us-east-1", "eu-west-1"]


def test_sections_never_set_show_the_deployment_environment(control_plane_factory) -> None:
    """What the controllers run with until an operator decides otherwise, not model defaults."""
    cp = control_plane_factory(WORKER_DISCOVERY_REGIONS="us-east-1, us-west-2", WORKER_DISCOVERY_AMI_NAME="CML-2.9.0-*",
                               WORKER_DISCOVERY_INTERVAL=2, METRICS_POLL_INTERVAL=3, IDLE_THRESHOLD_MINUTES=7)
    with cp.client() as http:
        shown = http.get("/api/settings", headers=cp.viewer()).json()
        assert shown["customized"] == []
        assert shown["discovery"] == {"enabled": True, "regions": ["us-east-1", "us-west-2"],
                                      "ami_name_pattern": "CML-2.9.0-*", "scan_interval_seconds": 2}
        assert shown["monitoring"]["metrics_poll_interval_seconds"] == 3
        assert shown["idle"]["threshold_minutes"] == 7
        monitoring = {**shown["monitoring"], "metrics_poll_interval_seconds": 30, "cpu_threshold": 80}
        updated = http.put("/api/settings", headers=cp.admin(), json={"version": shown["version"],
                                                                      "monitoring": monitoring})
        assert updated.status_code == 200, updated.text
        for body in (updated.json(), http.get("/api/internal/settings", headers=cp.internal()).json()):
            assert body["customized"] == ["monitoring"]
            assert body["monitoring"]["metrics_poll_interval_seconds"] == 30
            assert body["discovery"]["regions"] == ["us-east-1", "us-west-2"]


def test_template_crud_with_versions(control_plane) -> None:
    with control_plane.client() as http:
        created = http.post("/api/templates", headers=control_plane.admin(), json=TEMPLATE)
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 1
        assert http.post("/api/templates", headers=control_plane.admin(), json=TEMPLATE).status_code == 409
        assert [t["name"] for t in http.get("/api/templates", headers=control_plane.viewer()).json()] == [
            "standard-m5zn"]
        changed = {**TEMPLATE, "cost_per_hour_usd": 4.5}
        put = http.put("/api/templates/standard-m5zn", headers=control_plane.admin(),
                       json={"template": changed, "version": 1})
        assert put.status_code == 200
        assert put.json()["version"] == 2
        assert put.json()["cost_per_hour_usd"] == 4.5
        stale = http.put("/api/templates/standard-m5zn", headers=control_plane.admin(),
                         json={"template": changed, "version": 1})
        assert stale.status_code == 409
        mismatch = http.put("/api/templates/other", headers=control_plane.admin(),
                            json={"template": changed, "version": 2})
        assert mismatch.status_code == 422
        bad_subnet = {**TEMPLATE, "name": "bad", "regions": {"us-east-1": {"subnet_id": "not-a-subnet"}}}
        assert http.post("/api/templates", headers=control_plane.admin(), json=bad_subnet).status_code == 422
        assert http.delete("/api/templates/standard-m5zn?version=1", headers=control_plane.admin()).status_code == 409
        assert http.delete("/api/templates/standard-m5zn", headers=control_plane.admin()).status_code == 204
        assert http.delete("/api/templates/standard-m5zn", headers=control_plane.admin()).status_code == 204
        assert http.get("/api/templates/standard-m5zn", headers=control_plane.viewer()).status_code == 404
