"""HTTP core of the CML client: one shared connection pool, tokens per host, bounds, typed errors.

Why one pool for the whole fleet: ~2,000 hosts polled every cycle would otherwise mean 2,000 clients, each
with its own pool, TLS context and idle sockets. Here one aiohttp session (`wire`) carries every request;
what differs per host (token, in-flight slots, credentials) is looked up by the normalised base URL.

Failure model: transport errors, timeouts and 5xx raise `CmlUnreachableError` (GETs are retried
`get_retries` times first); 401 triggers one re-authentication and one retry; refused credentials raise
`CmlAuthError`; 404 `CmlNotFoundError`; other 4xx `CmlRejectedError`; a redirect or a body that is not
the documented JSON `CmlResponseError`. Passwords and tokens never appear in logs or error messages.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from lcm_core.cml.errors import (
    CmlAuthError,
    CmlError,
    CmlNotFoundError,
    CmlRejectedError,
    CmlResponseError,
    CmlUnreachableError,
)
from lcm_core.cml.parsers import BASE_NODES_BY_PRODUCT
from lcm_core.cml.pool import ConcurrencyLimiter, TokenCache, host_key, host_label
from lcm_core.cml.wire import AiohttpWire, WireError, WireTimeout

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v0"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class CmlCredentials:
    """API user of a CML host. The password is kept out of `repr` so it cannot leak through a log line."""

    username: str
    password: str = field(repr=False)


def _description(response: httpx.Response) -> str:
    """CML's error `description` (`{code, description}`), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("description"), str):
        return body["description"][:300]
    return str(body)[:200]


class CmlTransport:
    """Authenticated, bounded, typed HTTP access to many CML hosts; `CmlClient` adds the endpoints."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        verify_tls: bool = True,
        ca_file: str | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_in_flight: int = 100,
        max_per_host: int = 4,
        get_retries: int = 1,
        retry_backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
        base_nodes_by_product: Mapping[str, int] = BASE_NODES_BY_PRODUCT,
    ) -> None:
        """`verify_tls=False` accepts CML's self-signed certificates; `ca_file` trusts a private CA instead.

        `max_in_flight` bounds concurrent requests over the whole fleet (and sizes the connection pool);
        `max_per_host` bounds them per host. `get_retries` applies to idempotent GETs only.
        """
        self.credentials = CmlCredentials(username, password)
        self._host_credentials: dict[str, CmlCredentials] = {}
        self._get_retries = max(0, get_retries)
        self._retry_backoff = retry_backoff
        self._base_nodes = base_nodes_by_product
        self.tokens = TokenCache()
        self.limiter = ConcurrencyLimiter(max_in_flight, max_per_host)
        self.change_guard: Callable[[str], None] | None = None
        """Called with a description right before every authorized request that is not a GET is sent (after
        it got its concurrency slot and token, which may take a while); raises to cancel it. Controllers set
        their leader fence here, so that no CML change leaves a replica that no longer leads."""
        verify: bool | ssl.SSLContext = ssl.create_default_context(cafile=ca_file) if ca_file else verify_tls
        headers = {"Accept": "application/json"}
        # The wire is aiohttp's, used directly (see `wire`): with 2,000 hosts and ~6 calls each per cycle, the
        # CPU per request is the cost of a cycle. An injected transport (tests: respx) goes through httpx.
        self._wire: AiohttpWire | None = None
        self._http: httpx.AsyncClient | None = None
        if transport is None:
            self._wire = AiohttpWire(verify=verify, max_connections=max_in_flight, timeout=timeout,
                                     connect_timeout=connect_timeout, headers=headers)
        else:
            limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight,
                                  keepalive_expiry=30.0)
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=connect_timeout), limits=limits,
                                           headers=headers, transport=transport, follow_redirects=False)

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS settings hosts are verified with (None with an injected transport)."""
        return self._wire.ssl_context if self._wire is not None else None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
        if self._http is not None:
            await self._http.aclose()

    def set_host_credentials(self, host: str, username: str, password: str) -> None:
        """Use other credentials for one host (the default applies to every other host)."""
        key = host_key(host)
        self._host_credentials[key] = CmlCredentials(username, password)
        self.tokens.invalidate(key)

    @property
    def base_nodes_by_product(self) -> Mapping[str, int]:
        """Nodes included per product licence, used for `node_limit` (see `parsers.BASE_NODES_BY_PRODUCT`)."""
        return self._base_nodes

    def credentials_for(self, host: str) -> CmlCredentials:
        return self._host_credentials.get(host_key(host), self.credentials)

    # ---- transport ------------------------------------------------------------------------------

    async def _exchange(self, host: str, method: str, path: str, *, token: str | None = None,
                        params: Mapping[str, Any] | None = None, json: Any = None, content: str | None = None,
                        request_timeout: float | None = None) -> httpx.Response:
        """One HTTP exchange inside a concurrency slot; transport failures become `CmlUnreachableError`."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        extra: dict[str, Any] = {} if request_timeout is None else {"timeout": request_timeout}
        url = f"{host}{API_PREFIX}{path}"
        async with self.limiter.slot(host):
            if self.change_guard is not None and token is not None and method != "GET":
                self.change_guard(f"send {method} {path} to CML {host_label(host)}")
            try:
                if self._wire is not None:
                    return await self._wire.send(method, url, params=params, json=json, content=content,
                                                 headers=headers, read_timeout=request_timeout)
                assert self._http is not None
                return await self._http.request(method, url, params=params, json=json, content=content,
                                                headers=headers, **extra)
            except (httpx.TimeoutException, WireTimeout) as exc:
                raise CmlUnreachableError(f"CML {host_label(host)} {method} {path}: timed out "
                                          f"({type(exc).__name__})", host=host_label(host)) from exc
            except (httpx.TransportError, WireError) as exc:
                raise CmlUnreachableError(f"CML {host_label(host)} {method} {path}: {type(exc).__name__}: "
                                          f"{exc}", host=host_label(host)) from exc

    def _error(self, host: str, method: str, path: str, response: httpx.Response,
               redact: Sequence[str] = ()) -> CmlError:
        """The typed error of a non-2xx answer. `redact` lists secrets the request carried (a password, a
        licensing token): a validation error may echo its input, and that must not reach a log."""
        status = response.status_code
        label = host_label(host)
        if 300 <= status < 400:  # typically http:// answered by a redirect to https://
            where = response.headers.get("location", "nowhere")
            return CmlResponseError(f"CML {label} {method} {API_PREFIX}{path} → {status} redirect to {where}; "
                                    "check the host's base URL", host=label, status_code=status)
        description = _description(response)
        for secret in redact:
            if secret:
                description = description.replace(secret, "***")
        message = f"CML {label} {method} {API_PREFIX}{path} → {status}: {description}"
        if status in (401, 403):
            return CmlAuthError(message, host=label, status_code=status)
        if status == 404:
            return CmlNotFoundError(message, host=label, status_code=status)
        if status >= 500:
            return CmlUnreachableError(message, host=label, status_code=status)
        return CmlRejectedError(message, host=label, status_code=status)

    async def _authenticate(self, host: str) -> str:
        creds = self.credentials_for(host)
        label = host_label(host)
        response = await self._exchange(host, "POST", "/authenticate",
                                        json={"username": creds.username, "password": creds.password})
        if response.status_code in (401, 403):
            raise CmlAuthError(f"CML {label} refused the credentials of user {creds.username!r} "
                               f"({response.status_code})", host=label, status_code=response.status_code)
        if response.status_code >= 300:
            raise self._error(host, "POST", "/authenticate", response, redact=(creds.password,))
        token = self._decode(host, "/authenticate", response)
        if not isinstance(token, str) or not token:
            raise CmlResponseError(f"CML {label} /authenticate did not answer a token string", host=label)
        logger.debug("CML %s: authenticated as %s", label, creds.username)
        return token

    async def _token(self, host: str) -> str:
        """The cached token, or a new one (one authentication per host at a time)."""
        token = self.tokens.get(host)
        if token is not None:
            return token
        async with self.tokens.lock(host):
            token = self.tokens.get(host)
            if token is None:
                token = await self._authenticate(host)
                self.tokens.put(host, token)
            return token

    async def _authorized(self, host: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with the bearer token; on 401 drop it, re-authenticate once and resend once."""
        token = await self._token(host)
        response = await self._exchange(host, method, path, token=token, **kwargs)
        if response.status_code != 401:
            return response
        logger.info("CML %s: token refused on %s %s; re-authenticating once", host_label(host), method, path)
        self.tokens.invalidate(host, token)
        token = await self._token(host)
        return await self._exchange(host, method, path, token=token, **kwargs)

    async def request(self, host: str, method: str, path: str, *, auth: bool = True,
                      params: Mapping[str, Any] | None = None, json: Any = None, content: str | None = None,
                      request_timeout: float | None = None, redact: Sequence[str] = ()) -> httpx.Response:
        """Send one API request and return the 2xx response, or raise the typed error.

        `request_timeout` overrides the client's read timeout for this request (large imports); `redact`
        names secrets in the request body to keep out of error messages.
        """
        key, method = host_key(host), method.upper()
        attempts = 1 + (self._get_retries if method == "GET" else 0)
        kwargs: dict[str, Any] = {"params": params, "json": json, "content": content,
                                  "request_timeout": request_timeout}
        for attempt in range(1, attempts + 1):
            try:
                if auth:
                    response = await self._authorized(key, method, path, **kwargs)
                else:
                    response = await self._exchange(key, method, path, **kwargs)
                if response.status_code >= 500:
                    raise self._error(key, method, path, response, redact)
                break
            except CmlUnreachableError as exc:
                if attempt == attempts:
                    raise
                delay = self._retry_backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
                logger.debug("CML %s %s %s failed (%s); retry in %.2fs", host_label(key), method, path,
                             exc.message, delay)
                await asyncio.sleep(delay)
        if response.status_code >= 300:
            raise self._error(key, method, path, response, redact)
        return response

    def _decode(self, host: str, path: str, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise CmlResponseError(f"CML {host_label(host)} {path}: answer is not JSON ({kind}, "
                                   f"{len(response.content)} bytes)", host=host_label(host)) from exc

    async def get_json(self, host: str, path: str, *, auth: bool = True,
                       params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode the JSON body (`CmlResponseError` if it is not JSON)."""
        return self._decode(host, path, await self.request(host, "GET", path, auth=auth, params=params))

    def _model(self, host: str, path: str, model: type[M], body: Any) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise CmlResponseError(f"CML {host_label(host)} {path}: unexpected answer "
                                   f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']})",
                                   host=host_label(host)) from exc

    def _models(self, host: str, path: str, model: type[M], body: Any) -> list[M]:
        if not isinstance(body, list):
            raise CmlResponseError(f"CML {host_label(host)} {path}: expected a list, got "
                                   f"{type(body).__name__}", host=host_label(host))
        return [self._model(host, path, model, item) for item in body]

    def _scalar(self, host: str, path: str, body: Any, kind: type) -> Any:
        if not isinstance(body, kind):
            raise CmlResponseError(f"CML {host_label(host)} {path}: expected a bare {kind.__name__}, got "
                                   f"{type(body).__name__}", host=host_label(host))
        return body

    # ---- tokens ---------------------------------------------------------------------------------

    async def authenticate(self, host: str) -> None:
        """Force a fresh token for `host` (normally tokens are fetched lazily and refreshed on 401)."""
        key = host_key(host)
        self.tokens.invalidate(key)
        await self._token(key)

    async def ensure_token(self, host: str) -> None:
        """Authenticate unless a valid token is cached (lets a caller fail fast on bad credentials)."""
        await self._token(host_key(host))
