"""Dashboard single sign-on: the OAuth 2.0 authorization code flow with PKCE against the OIDC issuer.

The CPA redirects the browser to the identity provider, receives the code on its callback and exchanges it
itself (the client secret, if any, never reaches the browser). What the flow needs between the two legs
(state, PKCE verifier, redirect URI) travels in a short-lived signed cookie, so any CPA replica can
finish a login that another one began.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from control_plane_api.infrastructure.identity import AuthenticationError

FLOW_SECONDS = 600


@dataclass(frozen=True)
class OidcClient:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcLogin:
    COOKIE = "lcm_oidc"

    def __init__(self, client: OidcClient | None, secret: str) -> None:
        self.client = client
        self._secret = hashlib.sha256(b"lcm-oidc-flow:" + secret.encode()).digest()
        self._metadata: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def _discover(self) -> dict[str, Any]:
        assert self.client is not None
        async with self._lock:
            if self._metadata is None:
                url = self.client.issuer.rstrip("/") + "/.well-known/openid-configuration"
                try:
                    async with httpx.AsyncClient(timeout=5.0) as http:
                        response = await http.get(url)
                        response.raise_for_status()
                        metadata = response.json()
                    missing = {"authorization_endpoint", "token_endpoint"} - metadata.keys()
                    if missing:
                        raise KeyError(f"the discovery document lacks {', '.join(sorted(missing))}")
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    raise AuthenticationError(f"identity provider discovery failed: {exc}") from exc
                self._metadata = metadata
        return self._metadata

    async def begin(self, redirect_uri: str) -> tuple[str, str]:
        """The identity provider's authorization URL, and the flow cookie to set."""
        client = self.client
        if client is None:
            raise AuthenticationError("single sign-on is not configured")
        metadata = await self._discover()
        # PKCE binds the code to this flow and `state` binds the answer to this browser; the session is made
        # from the access token (no ID token is used, so no nonce is needed).
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = urlencode({
            "response_type": "code", "client_id": client.client_id, "redirect_uri": redirect_uri,
            "scope": client.scopes, "state": state,
            "code_challenge": _challenge(verifier), "code_challenge_method": "S256",
        })
        cookie = jwt.encode({"state": state, "verifier": verifier, "redirect_uri": redirect_uri,
                             "exp": int(time.time()) + FLOW_SECONDS, "typ": "lcm-oidc-flow"},
                            self._secret, algorithm="HS256")
        return f"{metadata['authorization_endpoint']}?{query}", cookie

    async def complete(self, code: str, state: str, cookie: str | None) -> str:
        """Check the state against the flow cookie, exchange the code; the access token to verify."""
        client = self.client
        if client is None:
            raise AuthenticationError("single sign-on is not configured")
        try:
            flow = jwt.decode(cookie or "", self._secret, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.PyJWTError as exc:
            raise AuthenticationError("the sign-in took too long or began elsewhere; try again") from exc
        if flow.get("typ") != "lcm-oidc-flow" or not hmac.compare_digest(str(flow.get("state")), state):
            raise AuthenticationError("the sign-in answer does not belong to this browser's sign-in")
        metadata = await self._discover()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow["redirect_uri"],
                "client_id": client.client_id, "code_verifier": flow["verifier"]}
        # A public client (no secret) sends no credentials: httpx's "no auth" is its client default, not None.
        auth = httpx.BasicAuth(client.client_id, client.client_secret) if client.client_secret \
            else httpx.USE_CLIENT_DEFAULT
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                response = await http.post(metadata["token_endpoint"], data=form, auth=auth)
                response.raise_for_status()
                token = response.json()["access_token"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise AuthenticationError(f"the identity provider refused the code: {exc}") from exc
        if not isinstance(token, str):
            raise AuthenticationError("the identity provider returned no access token")
        return token
