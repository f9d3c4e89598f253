"""Origin checks with scheme, host and port, and the caching/sniffing headers of API answers (real CPA)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from control_plane_api.api.web_guard import parse_origin, same_origin
from tests.fixtures.control_plane import ADMIN_PASSWORD


def _logged_in(http) -> int:
    assert http.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).status_code == 200
    return http.get("/api/settings").json()["version"]


def test_a_cookie_mutation_from_another_scheme_host_or_port_is_refused(control_plane) -> None:
    cp = control_plane
    own = urlsplit(cp.url)
    with cp.client() as http:
        version = _logged_in(http)
        for foreign in (f"https://{own.netloc}", f"http://{own.hostname}:{own.port + 1}", "http://evil.example",
                        f"http://{own.hostname}", "null"):
            refused = http.put("/api/settings", json={"version": version}, headers={"Origin": foreign})
            assert refused.status_code == 403, foreign
            assert "cross-origin" in refused.json()["detail"]
        referer = http.put("/api/settings", json={"version": version},
                           headers={"Referer": f"https://{own.netloc}/"})
        assert referer.status_code == 403
        same = http.put("/api/settings", json={"version": version}, headers={"Origin": cp.url})
        assert same.status_code == 200, same.text
        same_referer = http.put("/api/settings", json={"version": same.json()["version"]},
                                headers={"Referer": f"{cp.url}/workers"})
        assert same_referer.status_code == 200, same_referer.text


def test_a_bearer_request_is_not_subject_to_the_cookie_origin_check(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        version = http.get("/api/settings", headers=cp.admin()).json()["version"]
        answer = http.put("/api/settings", json={"version": version},
                          headers={**cp.admin(), "Origin": "https://tools.example"})
        assert answer.status_code == 200, answer.text


def test_public_origins_admit_the_proxys_origin(control_plane_factory) -> None:
    cp = control_plane_factory(CPA_PUBLIC_ORIGINS="https://lcm.example.com, https://lcm.example.com:8443")
    with cp.client() as http:
        version = _logged_in(http)
        # As behind a proxy that keeps the Host header and terminates TLS: the CPA itself sees plain HTTP.
        for host in ("lcm.example.com", "lcm.example.com:8443"):
            answer = http.put("/api/settings", json={"version": version},
                              headers={"Host": host, "Origin": f"https://{host}"})
            assert answer.status_code == 200, (host, answer.text)
            version = answer.json()["version"]
        assert http.put("/api/settings", json={"version": version}, headers={
            "Host": "lcm.example.com:8444", "Origin": "https://lcm.example.com:8444"}).status_code == 403


def test_api_answers_are_not_stored_and_not_sniffed(control_plane) -> None:
    cp = control_plane
    with cp.client() as http:
        for answer in (http.get("/api/workers", headers=cp.viewer()), http.get("/api/health"),
                       http.get("/api/workers"), http.get("/api/lablet-definitions/nope", headers=cp.viewer()),
                       http.post("/api/lablet-definitions", headers=cp.admin(), json={})):
            assert answer.headers["cache-control"] == "no-store", answer.request.url
            assert answer.headers["x-content-type-options"] == "nosniff"
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("claimed", "expected"), [
    ("http://host:8030", True), ("http://HOST:8030/path?q", True), ("https://host:8030", False),
    ("http://host", False), ("http://other:8030", False), ("null", False), ("", False), ("http://[::1", False),
])
def test_same_origin_compares_scheme_host_and_port(claimed, expected) -> None:
    assert same_origin(claimed, parse_origin("http://host:8030")) is expected


def test_default_ports_are_made_explicit() -> None:
    assert parse_origin("https://h") == parse_origin("https://h:443") == ("https", "h", 443)
    assert parse_origin("ftp://h") is None
