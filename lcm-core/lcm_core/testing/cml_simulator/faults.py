"""Fault injection for the simulated hosts' API: latency, errors, hangs, malformed bodies, host down.

Faults are set per host id or globally through the admin API; a request to `/hosts/{id}/api/v0/...`
uses the host's fault if one is set (and matches), else the global one. They are applied by an ASGI
middleware that sits outside FastAPI, in this order: down, latency, hang (timeout), error, malformed.

"Down" must look like an unreachable host to a client, although all hosts share one listening socket:
in the default `reset` mode the middleware aborts the TCP connection without answering (the client
sees a connection reset / "server disconnected", a transport error like a dead host), falling back to
a 503 when the server's transport is not reachable (e.g. an in-process ASGI test client).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import random
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lcm_core.testing.cml_simulator.config import API_PREFIX, HOSTS_PREFIX
from lcm_core.testing.cml_simulator.malform import MalformedMode, malform

_HOST_PATH = re.compile(rf"^{HOSTS_PREFIX}/([^/]+){API_PREFIX}(?:/(.*))?$")


class FaultSpec(BaseModel):
    """One fault; every field defaults to "no fault"."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, le=600_000, description="added before the request is handled")
    error_rate: float = Field(0.0, ge=0, le=1, description="fraction of requests answered error_status")
    error_status: int = Field(500, ge=400, le=599)
    timeout_rate: float = Field(0.0, ge=0, le=1, description="fraction of requests that hang")
    hang_seconds: float = Field(30.0, gt=0, le=3600, description="how long a hanging request hangs (then 504)")
    malformed: MalformedMode | None = Field(None, description="damage 2xx JSON bodies")
    down: bool = Field(False, description="the host is unreachable")
    down_mode: Literal["reset", "503"] = "reset"
    endpoints: list[str] | None = Field(None, description="API paths after /api/v0/ (prefix or glob); None: all")
    methods: list[str] | None = Field(None, description="HTTP methods; None: all")
    remaining: int | None = Field(None, ge=1, description="apply to the next N matching requests only")
    seed: int | None = Field(None, description="seed of the rate dice, for reproducible runs")

    def matches(self, method: str, api_path: str) -> bool:
        if self.methods is not None and method.upper() not in {m.upper() for m in self.methods}:
            return False
        if self.endpoints is None:
            return True
        for pattern in self.endpoints:
            pattern = pattern.strip("/")
            if api_path == pattern or api_path.startswith(f"{pattern}/") or fnmatch.fnmatchcase(api_path, pattern):
                return True
        return False


class ActiveFault:
    """A set fault with its own dice and countdown."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.remaining = spec.remaining
        self.hits = 0
        self._rng = random.Random(spec.seed)

    def roll(self, rate: float) -> bool:
        return rate >= 1.0 or (rate > 0.0 and self._rng.random() < rate)

    def to_json(self) -> dict[str, Any]:
        return {**self.spec.model_dump(mode="json"), "remaining": self.remaining, "hits": self.hits}


class FaultRegistry:
    def __init__(self) -> None:
        self.global_fault: ActiveFault | None = None
        self.hosts: dict[str, ActiveFault] = {}
        self._cleared = asyncio.Event()

    def set(self, instance_id: str | None, spec: FaultSpec) -> ActiveFault:
        fault = ActiveFault(spec)
        if instance_id is None:
            self.global_fault = fault
        else:
            self.hosts[instance_id] = fault
        return fault

    def clear(self, instance_id: str | None = None) -> None:
        """Clear one host's fault, or the global one; hanging requests of cleared faults return."""
        if instance_id is None:
            self.global_fault = None
        else:
            self.hosts.pop(instance_id, None)
        self._wake()

    def reset(self) -> None:
        self.global_fault = None
        self.hosts.clear()
        self._wake()

    def _wake(self) -> None:
        self._cleared.set()
        self._cleared = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return {"global": self.global_fault.to_json() if self.global_fault else None,
                "hosts": {host: fault.to_json() for host, fault in self.hosts.items()}}

    def pick(self, instance_id: str, method: str, api_path: str) -> ActiveFault | None:
        """The fault for this request (host first, then global), counted against its `remaining`."""
        fault = self.hosts.get(instance_id)
        if fault is None or not fault.spec.matches(method, api_path):
            fault = self.global_fault
            if fault is None or not fault.spec.matches(method, api_path):
                return None
        fault.hits += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                if fault is self.global_fault:
                    self.global_fault = None
                else:
                    self.hosts.pop(instance_id, None)
        return fault

    async def wait_cleared(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cleared.wait(), timeout=seconds)


async def _send_error(send: Send, status: int, description: str) -> None:
    body = json.dumps({"code": status, "description": description}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _abort_connection(send: Send) -> bool:
    """Drop the TCP connection under uvicorn's request cycle without a response, if reachable."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        return False
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the connection lost, so it does not answer a 500
    return True


class FaultMiddleware:
    """Outermost ASGI layer (it needs uvicorn's own `send` to abort a connection)."""

    def __init__(self, app: ASGIApp, registry: FaultRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _HOST_PATH.match(scope["path"]) if scope["type"] == "http" else None
        fault = self.registry.pick(match.group(1), scope["method"], match.group(2) or "") if match else None
        if fault is None:
            await self.app(scope, receive, send)
            return
        spec = fault.spec
        if spec.down:
            if spec.down_mode == "reset" and await _abort_connection(send):
                return
            await _send_error(send, 503, "Service Unavailable: the host is down")
            return
        if spec.latency_ms:
            await asyncio.sleep(spec.latency_ms / 1000.0)
        if fault.roll(spec.timeout_rate):
            if await self._hang(receive, spec.hang_seconds):
                await _send_error(send, 504, "Gateway Timeout: simulated hang")
            return
        if fault.roll(spec.error_rate):
            await _send_error(send, spec.error_status, "Simulated fault: injected error")
            return
        if spec.malformed is not None:
            await self._malformed(scope, receive, send, spec.malformed)
            return
        await self.app(scope, receive, send)

    async def _hang(self, receive: Receive, seconds: float) -> bool:
        """Hang until `seconds` pass, the fault is cleared or the client gives up; False if it gave up."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(disconnected())
        waiter = asyncio.ensure_future(self.registry.wait_cleared(seconds))
        try:
            await asyncio.wait({watcher, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watcher, waiter):
                task.cancel()
        return not (watcher.done() and not watcher.cancelled())

    async def _malformed(self, scope: Scope, receive: Receive, send: Send, mode: MalformedMode) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",)]
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        if 200 <= start["status"] < 300 and body and b"json" in content_type:
            body, new_type = malform(mode, body)
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            headers.append((b"content-type", new_type.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
