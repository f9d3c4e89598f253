"""Dashboard single sign-on against a small OIDC identity provider (Keycloak-like: discovery, authorization
endpoint, token endpoint with PKCE, JWKS): the browser's redirects are followed one by one."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from lcm_core.testing.devstack import tokens

CLIENT_ID = "lcm-dashboard"


class Idp:
    """Issues codes for `user` and exchanges them for an access token, checking PKCE and the client."""

    def __init__(self, key_path: Path) -> None:
        self.private_pem = key_path.read_bytes()
        private = serialization.load_pem_private_key(self.private_pem, password=None)
        self.jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))  # type: ignore[arg-type]
        self.jwk.update(kid="idp", use="sig", alg="RS256")
        self.codes: dict[str, dict[str, str]] = {}
        self.roles = ["admin"]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_port}/realms/lcm"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                base = idp.issuer
                if url.path == "/realms/lcm/.well-known/openid-configuration":
                    return self._json(200, {"issuer": base, "jwks_uri": f"{base}/certs",
                                            "authorization_endpoint": f"{base}/auth",
                                            "token_endpoint": f"{base}/token"})
                if url.path == "/realms/lcm/certs":
                    return self._json(200, {"keys": [idp.jwk]})
                if url.path == "/realms/lcm/auth":  # the user "logs in" at once
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = f"code-{len(idp.codes)}"
                    idp.codes[code] = q
                    self.send_response(302)
                    answer = urlencode({"code": code, "state": q["state"]})
                    self.send_header("Location", f"{q['redirect_uri']}?{answer}")
                    self.end_headers()
                    return None
                return self._json(404, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                asked = idp.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "").encode()
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                if (asked is None or asked["code_challenge"] != challenge or form.get("client_id") != CLIENT_ID
                        or form.get("redirect_uri") != asked["redirect_uri"]):
                    return self._json(400, {"error": "invalid_grant"})
                token = jwt.encode({"iss": idp.issuer, "aud": "lcm", "sub": "u-7", "preferred_username": "alice",
                                    "exp": int(time.time()) + 300, "realm_access": {"roles": idp.roles}},
                                   idp.private_pem, algorithm="RS256", headers={"kid": "idp"})
                return self._json(200, {"access_token": token, "token_type": "Bearer"})

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[Idp]:
    private_path, _ = tokens.ensure_keypair(tmp_path / "idp")
    server = Idp(private_path)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    yield server
    server.server.shutdown()


@pytest.fixture
def sso_cp(control_plane_factory, idp: Idp):
    return control_plane_factory(AUTH_JWT_PUBLIC_KEY_FILE=None, AUTH_OIDC_ISSUER=idp.issuer,
                                 AUTH_OIDC_LOGIN_CLIENT_ID=CLIENT_ID)


def _sign_in(http, tamper_state: bool = False):
    start = http.get("/api/auth/oidc/start")
    assert start.status_code == 303
    authorize = urlsplit(start.headers["location"])
    query = parse_qs(authorize.query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    back = http.get(start.headers["location"])  # the identity provider answers with the callback URL
    callback = back.headers["location"]
    if tamper_state:
        callback = callback.replace("state=", "state=x")
    return http.get(callback)


def test_sso_login_opens_a_session_with_the_identity_providers_roles(sso_cp) -> None:
    with sso_cp.client() as http:
        assert http.get("/api/auth/options").json() == {"local_users": True, "sso": True}
        done = _sign_in(http)
        assert done.status_code == 303
        assert done.headers["location"] == "/"
        assert "SameSite=strict" in done.headers["set-cookie"]
        assert http.get("/api/auth/me").json() == {"subject": "alice", "roles": ["admin"], "via": "session"}


def test_sso_answers_that_do_not_match_this_browsers_sign_in_are_refused(sso_cp, idp: Idp) -> None:
    with sso_cp.client() as http:
        assert _sign_in(http, tamper_state=True).headers["location"] == "/?login_error=sso_failed"
        assert http.get("/api/auth/me").status_code == 401
    with sso_cp.client() as http:  # a callback without the flow cookie (another browser, or a replay)
        start = http.get("/api/auth/oidc/start")
        callback = http.get(start.headers["location"]).headers["location"]
    with sso_cp.client() as other:
        assert other.get(callback).headers["location"] == "/?login_error=sso_failed"
        assert other.get("/api/auth/oidc/callback?error=access_denied").headers["location"] == \
            "/?login_error=sso_denied"
    idp.roles = ["student"]
    with sso_cp.client() as http:
        assert _sign_in(http).headers["location"] == "/?login_error=no_role"
        assert http.get("/api/auth/me").status_code == 401
