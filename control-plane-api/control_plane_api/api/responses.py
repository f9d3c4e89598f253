"""The error answers of the API, as the OpenAPI document declares them.

Every error body is `{"detail": ..., "code": ...}`: `detail` is a sentence, except on 422 where it is always a
list of validation errors (FastAPI's shape), whether pydantic, a route or the domain refused the input; `code`
names the kind of error when the domain raised it (`not_found`, `conflict`, ...) and is absent from the answers
of the HTTP layer (authentication, routing, body limit).

Which answers a route can give follows from what it is, so they are declared by kind of route, here, rather
than remembered route by route:

- every route that needs credentials: 401 (none or bad; the request guard answers before the body is read),
  403 (a role missing, or a cookie-authenticated mutation from another origin) and 503 (the session store or
  the database is down);
- every route: 400 for a request the HTTP server cannot take (a request line or headers over its limits:
  plain text, from uvicorn) or, with a body, a body that is not JSON;
- a route with an id in its path, or a mutating one whose body names another object (a template, a
  definition): 404;
- a route that takes a body: 413 over the body limit;
- a mutating route: 409 (a stale version, a state that does not allow the change, or a deposed leader);
- every route with parameters or a body: 422 in the validation shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from control_plane_api.api.request_guard import is_anonymous


class ErrorBody(BaseModel):
    detail: str
    """What went wrong, in a sentence."""
    code: str | None = None
    """The kind of error (`not_found`, `conflict`, `unavailable`, `too_many_requests`...), when the domain
    raised it; absent from the HTTP layer's own answers."""


class ValidationItem(BaseModel):
    type: str
    """The rule that failed (pydantic's error type, or `invalid` for a rule checked by the route)."""
    loc: list[str | int]
    """Where: `["body", "field", 0]`, `["query", "status"]`; empty when the input as a whole is refused."""
    msg: str
    input: Any = None
    """The refused value when it is a short scalar, else null."""
    ctx: dict[str, Any] | None = None


class ValidationErrorBody(BaseModel):
    detail: list[ValidationItem] = Field(min_length=1)
    code: str | None = None


Answers = dict[int | str, dict[str, Any]]
"""A route's `responses` (FastAPI's type): by status code, the answer's model or content and description."""


def error_answer(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


MALFORMED: Answers = {
    400: {"description": "A body that is not JSON, or a request over the HTTP server's limits (its answer is plain "
                         "text)",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
                      "text/plain": {"schema": {"type": "string"}}}}}
UNAUTHENTICATED: Answers = {
    401: error_answer("No valid credentials (bearer token, dashboard session or, for internal routes, the API key)")}
FORBIDDEN: Answers = {
    403: error_answer("The caller's role does not allow this, or a cookie-authenticated mutation came from another "
                      "origin")}
UNAVAILABLE: Answers = {
    503: error_answer("A dependency (database, session store, etcd) is unavailable; `Retry-After` says when to retry")}
AUTHENTICATED: Answers = {**UNAUTHENTICATED, **FORBIDDEN, **UNAVAILABLE}
NOT_FOUND: Answers = {404: error_answer("No such object")}
CONFLICT: Answers = {
    409: error_answer("The change conflicts with the stored state: a stale version, a state that does not allow it, "
                      "an object that already exists, or a caller that is no longer the leader")}
TOO_LARGE: Answers = {413: error_answer("The body is larger than this route accepts")}
INVALID: Answers = {422: {"model": ValidationErrorBody, "description": "The input is not valid; `detail` lists why"}}

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_answers(route: APIRoute) -> Answers:
    """The error answers a route can give, from its kind (see the module's docstring)."""
    answers: Answers = dict(MALFORMED)
    mutating = bool((route.methods or set()) & _MUTATING)  # FastAPI always gives an APIRoute its methods
    if not is_anonymous(route.path):
        answers |= AUTHENTICATED
    if route.dependant.path_params or (mutating and route.body_field is not None):
        answers |= NOT_FOUND
    if mutating and not is_anonymous(route.path):
        answers |= CONFLICT
    if route.body_field is not None:
        answers |= TOO_LARGE
    if route.dependant.path_params or route.dependant.query_params or route.body_field is not None:
        answers |= INVALID
    return answers


def close_pattern_keys(node: Any) -> None:
    """pydantic documents a dict whose keys have a pattern (`dict[Label, ...]`) with `patternProperties`,
    which in JSON Schema leaves every other key free; the keys are validated, so say that no other is valid."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            close_pattern_keys(value)
    elif isinstance(node, list):
        for value in node:
            close_pattern_keys(value)


def document_error_answers(router: APIRouter) -> None:
    """Add the error answers of its kind to every documented route of `router` (what a route declares itself
    wins); before the router is included, which is when FastAPI takes the routes' answers into the app."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            route.responses = {**error_answers(route), **route.responses}


def install_document(app: FastAPI) -> None:
    """Make the generated document say what the validation does (see `close_pattern_keys`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = generate()  # FastAPI keeps it as app.openapi_schema too: this runs once
            close_pattern_keys(schema)
        return schema

    # Replacing `app.openapi` is FastAPI's documented way to change the document; mypy forbids assigning to a
    # method in general.
    app.openapi = openapi  # type: ignore[method-assign]
