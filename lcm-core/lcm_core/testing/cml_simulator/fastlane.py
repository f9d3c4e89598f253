"""A plain-ASGI lane in front of FastAPI for the endpoints a metrics cycle calls on every host.

A fleet benchmark sends ~10,000 simulator requests per cycle, and FastAPI spent ~0.2 ms of CPU on each:
routing (one regex per route until a match), dependency resolution, its middleware stack and response
validation cost several times what the handlers themselves do, on the machine the benchmarked code runs on.

Each hot endpoint keeps one definition, its FastAPI route (path, method, host dependency, handler, return
type; documented at /_admin/docs). `FastLane` compiles those routes at start-up into a dict keyed by
(method, path after `/hosts/{id}/api/v0/`). A request that hits the dict is answered by calling the route's
own dependency (`any_host` / `authorized_host`) and endpoint function, and its result is serialised with a
TypeAdapter of the route's response model, as FastAPI does: same state, same code, same bytes. `CmlError`
becomes the same error body as FastAPI's handler makes. Whatever the lane cannot answer exactly as FastAPI
would (another path or method, a query value other than `true`/`false`) goes to FastAPI unchanged. The lane
sits inside `FaultMiddleware`, so faults apply to its requests as to any other.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, APIRouter
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from lcm_core.testing.cml_simulator.config import API_PREFIX, HOSTS_PREFIX
from lcm_core.testing.cml_simulator.errors import CmlError, error_response

_HOSTS = f"{HOSTS_PREFIX}/"
_API = f"{API_PREFIX}/"
_ROUTE_PREFIX = f"{HOSTS_PREFIX}/{{instance_id}}{API_PREFIX}/"
_JSON_TYPE = (b"content-type", b"application/json")
#: The query values answered here; anything else pydantic may accept or refuse is left to FastAPI.
_BOOLS = {"true": True, "false": False}


@dataclass(frozen=True)
class _Route:
    endpoint: Callable[..., Any]
    host: tuple[str, Callable[..., Any]] | None  # parameter name, dependency giving the HostState
    request_param: str | None
    flags: tuple[str, ...]  # bool query parameters (with defaults)
    adapter: TypeAdapter[Any] | None  # None: the endpoint returns a Response

    def query(self, raw: bytes) -> dict[str, bool] | None:
        """The query arguments, or None when FastAPI must judge them (repeated, or not true/false)."""
        if not self.flags or not raw:
            return {}  # FastAPI ignores parameters the route does not declare
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)  # as Starlette parses them
        arguments: dict[str, bool] = {}
        for name in self.flags:
            values = [value for key, value in pairs if key == name]
            if not values:
                continue
            if len(values) > 1 or values[0] not in _BOOLS:
                return None
            arguments[name] = _BOOLS[values[0]]
        return arguments


def _compile(route: APIRoute) -> tuple[str, _Route]:
    """The lane's form of a hot route; TypeError for anything it could not answer as FastAPI does."""
    where = f"{sorted(route.methods or ())} {route.path}"
    if not route.methods:
        raise TypeError(f"fast lane: {where} names no methods (Starlette would serve it for every method)")
    suffix = route.path.removeprefix(_ROUTE_PREFIX)
    if suffix == route.path or "{" in suffix:
        raise TypeError(f"fast lane: {where} is not a fixed path under {_ROUTE_PREFIX}")
    if route.dependencies or route.status_code is not None or not isinstance(route.response_class,
                                                                             DefaultPlaceholder):
        raise TypeError(f"fast lane: {where} has route-level dependencies, status or response class")
    if not inspect.iscoroutinefunction(route.endpoint):
        raise TypeError(f"fast lane: {where} is not async (FastAPI would run it in a thread)")
    hints = typing.get_type_hints(route.endpoint, include_extras=True)
    host: tuple[str, Callable[..., Any]] | None = None
    request_param = None
    flags = []
    for name, parameter in inspect.signature(route.endpoint).parameters.items():
        hint = hints.get(name)
        depends = [meta for meta in getattr(hint, "__metadata__", ()) if isinstance(meta, params.Depends)]
        dependency = depends[0].dependency if depends else None
        if dependency is not None and host is None and _is_host_dependency(dependency):
            host = (name, dependency)
        elif hint is Request:
            request_param = name
        elif hint is bool and isinstance(parameter.default, bool):
            flags.append(name)
        else:
            raise TypeError(f"fast lane: {where} has parameter {name!r} it cannot resolve")
    # FastAPI takes no response model from a Response return annotation: such an endpoint returns its Response.
    adapter = None if route.response_model is None else TypeAdapter(route.response_model)
    return suffix, _Route(route.endpoint, host, request_param, tuple(flags), adapter)


def _is_host_dependency(dependency: Callable[..., Any] | None) -> bool:
    """`async def (instance_id, request)`, like `auth.any_host` and `auth.authorized_host`."""
    return inspect.iscoroutinefunction(dependency) and list(
        inspect.signature(dependency).parameters) == ["instance_id", "request"]


def _check_not_shadowed(every: list[APIRoute], route: APIRoute, method: str, suffix: str) -> None:
    """FastAPI serves the first route matching path and method: it must be `route` for the lane to answer."""
    path = f"{_HOSTS}i-0{_API}{suffix}"
    # `methods` None (Starlette's type; FastAPI always fills it in) would mean: every method.
    first = next(other for other in every
                 if (other.methods is None or method in other.methods) and other.path_regex.match(path))
    if first is not route:
        raise TypeError(f"fast lane: {method} {route.path} is shadowed by {first.path}")


class FastLane:
    """Answers the compiled hot routes itself; passes every other request to the FastAPI app."""

    def __init__(self, api: FastAPI, routers: Iterable[APIRouter], endpoints: Iterable[Callable[..., Any]]) -> None:
        """Compile the routes of `endpoints`, found in `routers` (which `api` includes as they are: with no
        prefix, dependencies or limits added, a router's route is what FastAPI serves)."""
        self.app: Any = api  # where other requests go
        self.api = api  # what `request.app` is for the endpoints (its `state.simulator`)
        self.routes: dict[tuple[str, str], _Route] = {}
        wanted = set(endpoints)
        every = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]
        for route in every:
            if route.endpoint in wanted:
                wanted.discard(route.endpoint)
                suffix, compiled = _compile(route)
                for method in route.methods or ():  # never empty: `_compile` refused such a route
                    _check_not_shadowed(every, route, method, suffix)
                    self.routes[(method, suffix)] = compiled
        if wanted:
            raise TypeError(f"fast lane: no route for {sorted(endpoint.__name__ for endpoint in wanted)}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(_HOSTS):
                # `/hosts/{instance_id}/api/v0/{rest}`: Starlette's `{instance_id}` is one non-empty segment.
                instance_id, _, rest = path[len(_HOSTS):].partition(_API)
                route = self.routes.get((scope["method"], rest))
                if route is not None and instance_id and "/" not in instance_id:
                    arguments = route.query(scope["query_string"])
                    if arguments is not None:
                        await self._answer(route, instance_id, arguments, scope, receive, send)
                        return
        await self.app(scope, receive, send)

    async def _answer(self, route: _Route, instance_id: str, arguments: dict[str, Any], scope: Scope,
                      receive: Receive, send: Send) -> None:
        scope["app"] = self.api  # what Starlette sets before routing; `request.app.state` needs it
        request = Request(scope, receive)
        try:
            if route.host is not None:
                name, dependency = route.host
                arguments[name] = await dependency(instance_id=instance_id, request=request)
            if route.request_param is not None:
                arguments[route.request_param] = request
            result = await route.endpoint(**arguments)
        except CmlError as exc:
            result = error_response(exc.status, exc.description)
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        assert route.adapter is not None, "only endpoints annotated with a Response class return one"
        # FastAPI's default serialisation: validate against the response model, dump JSON in one pass.
        body = route.adapter.dump_json(route.adapter.validate_python(result, from_attributes=True), by_alias=True)
        # The headers of Starlette's `Response(body, media_type="application/json")`, in its order.
        headers = [(b"content-length", str(len(body)).encode()), _JSON_TYPE]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
