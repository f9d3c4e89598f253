"""What the schemathesis run of `test_fuzz_openapi` found, one case each: the API answered differently from
its OpenAPI document (a 422 whose `detail` was a string, undocumented statuses, a 405 naming one method of
two), or took input it should refuse (numbers read as booleans or dates, booleans read as numbers, a filter
value that exists nowhere)."""

from __future__ import annotations

from typing import Any

from tests.control_plane_api.api.test_settings_and_templates import TEMPLATE


def _document(cp) -> dict[str, Any]:
    with cp.client() as http:
        return http.get("/api/openapi.json", headers=cp.viewer()).json()


def test_every_route_documents_the_errors_of_its_kind(control_plane) -> None:
    paths = _document(control_plane)["paths"]
    by_id = paths["/api/workers/{worker_id}"]["get"]["responses"]
    assert {"400", "401", "403", "404", "422", "503"} <= set(by_id)
    assert by_id["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert by_id["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrorBody")
    create = paths["/api/lablet-definitions"]["post"]["responses"]
    assert {"409", "413", "422"} <= set(create)
    login = paths["/api/auth/login"]["post"]["responses"]
    assert {"401", "403", "422", "429"} <= set(login)
    assert "401" not in paths["/api/health"]["get"]["responses"]  # anonymous: never asks for credentials


def test_a_422_from_a_route_or_the_domain_has_the_shape_of_a_validation_error(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        answers = [
            http.post("/api/auth/login", json={}),
            http.post("/api/lablet-definitions/none/apply-observations", headers=cp.admin(), json={"version": 1}),
            http.post("/api/lablet-definitions", headers=cp.admin(), json={"name": "x", "lab_topology_yaml": "0"}),
        ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert isinstance(detail, list), answer.text
        assert detail[0]["msg"]
        assert isinstance(detail[0]["loc"], list)
    assert "give username and password, or token" in answers[0].json()["detail"][0]["msg"]


def test_a_405_names_every_method_of_the_path(control_plane) -> None:
    with control_plane.client() as http:
        answer = http.request("PATCH", "/api/lablet-definitions", headers=control_plane.admin())
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} == {"GET", "POST"}


def test_numbers_are_not_booleans_nor_dates_and_booleans_are_not_numbers(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        version = http.get("/api/settings", headers=cp.viewer()).json()["version"]
        for idle in ({"auto_pause": 0}, {"snooze_minutes_after_resume": False}):
            answer = http.put("/api/settings", headers=cp.admin(), json={"version": version, "idle": idle})
            assert answer.status_code == 422, (idle, answer.text)
        capacity = {**TEMPLATE["capacity"], "max_nodes": True}
        for change in ({"version": False}, {"updated_at": 0}, {"capacity": capacity}):
            answer = http.post("/api/templates", headers=cp.admin(), json={**TEMPLATE, **change})
            assert answer.status_code == 422, (change, answer.text)
        fine = http.post("/api/templates", headers=cp.admin(), json=TEMPLATE)
        assert fine.status_code == 201, fine.text


def test_a_worker_filter_naming_no_status_or_region_is_refused(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        for params in ({"status": "bogus"}, {"health_status": ""}, {"aws_region": "mars-1"}):
            answer = http.get("/api/workers", headers=cp.viewer(), params=params)
            assert answer.status_code == 422, (params, answer.text)
        answer = http.get("/api/internal/workers", headers=cp.internal(), params={"status": "running,bogus"})
        assert answer.status_code == 422
        assert "unknown worker status 'bogus'" in answer.text
        fine = http.get("/api/workers", headers=cp.viewer(), params={"status": "running,stopped",
                                                                      "aws_region": "us-east-1"})
        assert fine.status_code == 200, fine.text
