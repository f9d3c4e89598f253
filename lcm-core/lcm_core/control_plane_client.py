"""Async client of the control plane's internal API, used by the controllers.

- Every request carries the `X-API-Key`; mutating requests from a leader carry `X-LCM-Leader-Epoch`
  (the election's fencing token, so the CPA can refuse a deposed leader), read from a provider at send time.
- Every attempt is a CLIENT span whose context goes along as the W3C `traceparent` header, so the control
  plane's span of the request is its child: a controller's unit of work is one trace across both services.
- Connection errors, timeouts and 5xx answers are retried with exponential backoff and jitter;
  4xx answers are never retried: they are mapped to the typed errors of `lcm_core.errors`.
"""

from __future__ import annotations

import asyncio
import json as _json
import logging
import random
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from lcm_core import tracing
from lcm_core.errors import ConflictError, InvalidError, LcmError, NotFoundError, UnavailableError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
EPOCH_HEADER = "X-LCM-Leader-Epoch"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ControlPlaneRejectedError(LcmError):
    """The control plane refused the request (401/403 or another 4xx)."""

    code = "rejected"

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message, status_code=status_code)
        self.status_code = status_code


def _jsonable(value: Any) -> Any:
    """Reports carry datetimes (and dates); everything else must already be JSON."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _error_for(response: httpx.Response) -> LcmError:
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text[:500]
    message = f"{response.request.method} {response.request.url.path} → {response.status_code}: {detail}"
    if response.status_code == 404:
        return NotFoundError(message)
    if response.status_code == 409:
        return ConflictError(message)
    if response.status_code == 422:
        return InvalidError(message)
    return ControlPlaneRejectedError(message, response.status_code)


class ControlPlaneClient:
    """Internal-API client with retries. Use as an async context manager or call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        epoch_provider: Callable[[], int | None] | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 50,
    ) -> None:
        self._epoch_provider = epoch_provider
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={API_KEY_HEADER: api_key},
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def __aenter__(self) -> ControlPlaneClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _delay(self, attempt: int) -> float:
        return min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """Send one request (retrying transient failures) and return the decoded JSON body (or None)."""
        method = method.upper()
        headers: dict[str, str] = {}
        if method in _MUTATING and self._epoch_provider is not None:
            epoch = self._epoch_provider()
            if epoch is not None:
                headers[EPOCH_HEADER] = str(epoch)
        content = None
        if json is not None:
            content = _json.dumps(json, default=_jsonable, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        last_problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            response = await self._attempt(method, path, content, params, headers, attempt)
            if isinstance(response, str):
                last_problem = response
            else:
                if response.status_code < 400:
                    return response.json() if response.content else None
                if response.status_code < 500:
                    raise _error_for(response)
                last_problem = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt < self._max_attempts:
                delay = self._delay(attempt)
                logger.warning(
                    "control plane %s %s failed (%s); retry %d/%d in %.2fs",
                    method, path, last_problem, attempt, self._max_attempts - 1, delay,
                )
                await asyncio.sleep(delay)
        raise UnavailableError(f"control plane {method} {path} failed after {self._max_attempts} attempts: "
                               f"{last_problem}")

    async def _attempt(self, method: str, path: str, content: bytes | None, params: dict[str, Any] | None,
                       headers: dict[str, str], attempt: int) -> httpx.Response | str:
        """One attempt, in its CLIENT span: the response, or what went wrong on the way (a transport error)."""
        with tracing.tracer().start_as_current_span(tracing.span_name(method, path), kind=SpanKind.CLIENT,
                                                    record_exception=False) as span:
            span.set_attributes({"http.request.method": method, "url.path": path,
                                 "server.address": self._http.base_url.host})
            if attempt > 1:
                span.set_attribute("http.request.resend_count", attempt - 1)
            traced = dict(headers)
            tracing.inject(traced)
            try:
                response = await self._http.request(method, path, content=content, params=params, headers=traced)
            except httpx.TransportError as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute("error.type", type(exc).__name__)
                return f"{type(exc).__name__}: {exc}"
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", str(response.status_code))
            return response

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, json=body)

    async def report_controller_status(self, status: dict[str, Any]) -> Any:
        """Publish a controller's leadership and loop stats (served by GET /api/system/controllers)."""
        return await self.post("/api/internal/controllers/status", status)
