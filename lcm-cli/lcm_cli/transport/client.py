"""The control-plane API's public REST, as the CLI calls it: JSON in, JSON out, every failure an `ApiError`
with a one-line message (the CLI prints it and exits non-zero; no traceback for an expected error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

#: The dashboard session cookie `POST /api/auth/login` sets (`lcm login` keeps its value).
SESSION_COOKIE = "lcm_session"
USER_AGENT = "lcm-cli/0.1"


class ApiError(Exception):
    """A call that did not succeed: `status` is the HTTP status, or None when the API was not reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Credentials:
    """What authenticates the calls: a bearer token wins over a session cookie (as the API decides too)."""

    token: str | None = None
    session: str | None = None

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.session:
            # No Origin header: the API refuses a cookie-authenticated change only from a browser's other origin.
            return {"Cookie": f"{SESSION_COOKIE}={self.session}"}
        return {}


def _detail(response: httpx.Response) -> str:
    """The API's error sentence: `detail` (a string, or on 422 a list of validation errors), else the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail[:5]:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query", "path"))
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "; ".join(parts) or "invalid input"
    return str(body)[:300]


_WHAT = {401: "not authenticated", 403: "forbidden", 404: "not found", 409: "conflict", 422: "invalid input",
         429: "too many requests", 503: "unavailable"}


def error_of(response: httpx.Response) -> ApiError:
    status = response.status_code
    what = _WHAT.get(status, "server error" if status >= 500 else "refused")
    hint = " (set LCM_TOKEN or run `lcm login`)" if status == 401 else ""
    return ApiError(f"{what} ({status}): {_detail(response)}{hint}", status)


def unreachable(base_url: str, exc: httpx.TransportError) -> ApiError:
    if isinstance(exc, httpx.ConnectError):
        reason = "connection refused" if "refused" in str(exc).lower() else (str(exc) or "cannot connect")
    elif isinstance(exc, httpx.TimeoutException):
        reason = "timed out"
    else:
        reason = str(exc) or type(exc).__name__
    return ApiError(f"cannot reach the API at {base_url}: {reason} (is it running? set LCM_API_URL or --api-url)")


class ApiClient:
    def __init__(self, base_url: str, credentials: Credentials, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  headers={"User-Agent": USER_AGENT, "Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, authenticated: bool = True) -> httpx.Response:
        headers = self.credentials.headers() if authenticated else {}
        query = {k: v for k, v in (params or {}).items() if v is not None and v != []}
        try:
            response = self._http.request(method, path, params=query, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from None
        except httpx.InvalidURL as exc:
            raise ApiError(f"not a valid API URL {self.base_url!r}: {exc}") from None
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        response = self.request("POST", path, params=params, body=body)
        return response.json() if response.content else None

    def delete(self, path: str) -> Any:
        response = self.request("DELETE", path)
        return response.json() if response.content else None

    def login(self, username: str, password: str) -> tuple[str, dict[str, Any]]:
        """`POST /api/auth/login`: the session cookie's value and who it is (`Me`)."""
        response = self.request("POST", "/api/auth/login", body={"username": username, "password": password},
                                authenticated=False)
        session = response.cookies.get(SESSION_COOKIE)
        if not session:
            raise ApiError("the API answered the login without a session cookie")
        return session, response.json()

    def logout(self) -> None:
        self.request("POST", "/api/auth/logout")
