"""Security by default: walk every route of the OpenAPI document and check who may call it."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from lcm_core.testing.devstack import tokens
from tests.fixtures.control_plane import ADMIN_PASSWORD, API_KEY, VIEWER_PASSWORD

#: `/api/auth/options` tells the login form which ways to log in exist (two booleans, no data).
PUBLIC = {("GET", "/api/health"), ("GET", "/api/ready"), ("POST", "/api/auth/login"), ("GET", "/api/auth/options")}
#: Routes only a viewer token is needed for (reads, and logging out/in oneself).
VIEWER_OK = {("GET", None), ("POST", "/api/auth/logout")}


def _routes(http) -> list[tuple[str, str]]:
    document = http.get("/api/openapi.json", headers={"X-API-Key": API_KEY}).json()
    return sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "some-id", path)


def test_every_route_needs_credentials_except_health_ready_and_login(control_plane) -> None:
    with control_plane.client() as http:
        routes = [*_routes(http), ("GET", "/api/openapi.json"), ("GET", "/api/docs")]
        assert len(routes) > 25
        for method, path in routes:
            if (method, path) in PUBLIC:
                continue
            response = http.request(method, _concrete(path), json={})
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without credentials"
            forged = http.request(method, _concrete(path), json={},
                                  headers={"Authorization": "Bearer not.a.token", "X-API-Key": "wrong"})
            assert forged.status_code == 401, f"{method} {path} accepted forged credentials"


def test_viewer_cannot_mutate_and_nobody_without_role_can_read(control_plane) -> None:
    with control_plane.client() as http:
        for method, path in _routes(http):
            if (method, path) in PUBLIC or path.startswith("/api/internal") or path == "/metrics":
                continue
            url = _concrete(path)
            no_role = http.request(method, url, json={},
                                   headers={"Authorization": f"Bearer {control_plane.nobody_token}"})
            if path in ("/api/auth/me", "/api/auth/logout"):
                assert no_role.status_code != 401
                continue
            assert no_role.status_code == 403, f"{method} {path}: {no_role.status_code} for a token without roles"
            if method == "GET" or path == "/api/events/stream":
                continue
            as_viewer = http.request(method, url, json={}, headers=control_plane.viewer())
            assert as_viewer.status_code == 403, f"{method} {path}: viewer got {as_viewer.status_code}"


def test_internal_routes_need_the_api_key_not_a_user_token(control_plane) -> None:
    with control_plane.client() as http:
        for method, path in _routes(http):
            if not path.startswith("/api/internal"):
                continue
            response = http.request(method, _concrete(path), json={}, headers=control_plane.admin())
            assert response.status_code == 401, f"{method} {path} accepted an admin token instead of the key"
        assert http.get("/api/internal/workers", headers={"X-API-Key": API_KEY}).status_code == 200


def test_tokens_with_wrong_signature_audience_or_expiry_are_refused(control_plane, tmp_path) -> None:
    other_private, _ = tokens.ensure_keypair(tmp_path / "other")
    foreign = tokens.issue_token(other_private.read_bytes(), "mallory", ["admin"], 3600)
    expired = tokens.issue_token(control_plane.private_key, "late", ["admin"], -10)
    wrong_aud = jwt.encode({"iss": tokens.ISSUER, "aud": "other", "sub": "x", "exp": 2_000_000_000,
                            "realm_access": {"roles": ["admin"]}}, control_plane.private_key, algorithm="RS256")
    with control_plane.client() as http:
        for token in (foreign, expired, wrong_aud):
            response = http.get("/api/workers", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401


@pytest.mark.parametrize(("username", "password", "can_mutate"),
                         [("admin", ADMIN_PASSWORD, True), ("viewer", VIEWER_PASSWORD, False)])
def test_dashboard_login_sets_a_session_cookie_with_the_users_roles(control_plane, username, password,
                                                                    can_mutate) -> None:
    with control_plane.client() as http:
        assert http.post("/api/auth/login", json={"username": username, "password": "wrong"}).status_code == 401
        login = http.post("/api/auth/login", json={"username": username, "password": password})
        assert login.status_code == 200
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert http.get("/api/workers").status_code == 200
        assert http.get("/api/auth/me").json()["subject"] == username
        settings = http.get("/api/settings").json()
        change = http.put("/api/settings", json={"version": settings["version"]})
        assert change.status_code == (200 if can_mutate else 403)
        cross = http.put("/api/settings", json={"version": settings["version"]},
                         headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert http.post("/api/auth/logout").status_code == 204
        assert http.get("/api/workers").status_code == 401


def test_login_exchanges_a_bearer_token_for_a_session(control_plane) -> None:
    with control_plane.client() as http:
        assert http.post("/api/auth/login", json={"token": control_plane.viewer_token}).status_code == 200
        assert http.get("/api/auth/me").json()["roles"] == ["viewer"]


def test_metrics_need_the_api_key_or_a_viewer(control_plane) -> None:
    with control_plane.client() as http:
        assert http.get("/metrics").status_code == 401
        scraped = http.get("/metrics", headers={"X-API-Key": API_KEY})
        assert scraped.status_code == 200
        assert "lcm_http_requests_total" in scraped.text
        assert http.get("/metrics", headers=control_plane.viewer()).status_code == 200


def test_bearer_tokens_verified_through_oidc_discovery_and_jwks(control_plane_factory, tmp_path) -> None:
    """An identity provider (Keycloak-like): /.well-known/openid-configuration → jwks_uri → RS256 keys."""
    private_path, _ = tokens.ensure_keypair(tmp_path / "idp")
    private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))  # type: ignore[arg-type]
    jwk.update(kid="lcm-local", use="sig", alg="RS256")

    class Idp(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_port}/realms/lcm"  # type: ignore[attr-defined]
            documents = {"/realms/lcm/.well-known/openid-configuration": {"issuer": base,
                                                                          "jwks_uri": f"{base}/certs"},
                         "/realms/lcm/certs": {"keys": [jwk]}}
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Idp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{server.server_port}/realms/lcm"
    try:
        cp = control_plane_factory(AUTH_JWT_PUBLIC_KEY_FILE=None, AUTH_OIDC_ISSUER=issuer)
        now = 2_000_000_000
        keycloak_admin = jwt.encode({"iss": issuer, "aud": "lcm", "sub": "u-1", "preferred_username": "alice",
                                     "exp": now, "resource_access": {"lcm": {"roles": ["admin"]}}},
                                    private_path.read_bytes(), algorithm="RS256", headers={"kid": "lcm-local"})
        other_issuer = jwt.encode({"iss": "https://evil.example", "aud": "lcm", "sub": "u-2", "exp": now,
                                   "realm_access": {"roles": ["admin"]}}, private_path.read_bytes(),
                                  algorithm="RS256", headers={"kid": "lcm-local"})
        with cp.client() as http:
            me = http.get("/api/auth/me", headers={"Authorization": f"Bearer {keycloak_admin}"}).json()
            assert me == {"subject": "alice", "roles": ["admin"], "via": "bearer"}
            assert http.get("/api/workers", headers={"Authorization": f"Bearer {other_issuer}"}).status_code == 401
    finally:
        server.shutdown()


#: Routes left out of the OpenAPI document on purpose, all public: the dashboard's static shell and files
#: (they hold no data; every data call goes through the API above) and the SSO flow's browser redirects.
PUBLIC_OUTSIDE_SCHEMA = {"/", "/static/vendor/{name}", "/static/{path:path}", "/api/auth/oidc/start",
                         "/api/auth/oidc/callback"}


def _api_paths(routes, prefix: str = ""):
    """Every API route's path (FastAPI may keep included routers as nested objects)."""
    from fastapi.routing import APIRoute

    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _api_paths(nested.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path


def test_routes_outside_the_schema_are_only_the_known_public_ones(control_plane) -> None:
    from control_plane_api.main import create_app

    with control_plane.client() as http:
        documented = {path for _, path in _routes(http)}
        every = set(_api_paths(create_app(control_plane.settings).routes))
        assert documented <= every
        hidden = every - documented
        assert hidden == PUBLIC_OUTSIDE_SCHEMA | {"/api/openapi.json", "/api/docs"}
        assert http.get("/").status_code == 200
        assert http.get("/api/auth/oidc/start", follow_redirects=False).headers["location"] == \
            "/?login_error=sso_unavailable"  # no SSO configured here: back to the login form
