"""Ways to damage a JSON response body, for the `malformed` fault.

Each mode mimics something a client must survive from a controller mid-upgrade, behind a broken
proxy, or of another version: keys missing, nulls, wrong types, another top-level shape, HTML instead
of JSON, a body cut short, or no body at all. The JSON-level modes apply recursively and
deterministically (same input, same damage), so tests can assert on the exact result.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any


class MalformedMode(StrEnum):
    MISSING_KEYS = "missing_keys"
    NULLS = "nulls"
    WRONG_TYPES = "wrong_types"
    WRONG_TOP_LEVEL = "wrong_top_level"
    NON_JSON = "non_json"
    TRUNCATED = "truncated"
    EMPTY = "empty"


NON_JSON_BODY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def drop_keys(value: Any) -> Any:
    """Drop every second key of every object (insertion order), recursively."""
    if isinstance(value, dict):
        return {key: drop_keys(item) for index, (key, item) in enumerate(value.items()) if index % 2 == 0}
    if isinstance(value, list):
        return [drop_keys(item) for item in value]
    return value


def nullify(value: Any) -> Any:
    """Every scalar becomes null; objects and lists keep their shape."""
    if isinstance(value, dict):
        return {key: nullify(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nullify(item) for item in value]
    return None


def retype(value: Any) -> Any:
    """Numbers become strings, strings become numbers, booleans become strings, null becomes an object."""
    if isinstance(value, dict):
        return {key: retype(item) for key, item in value.items()}
    if isinstance(value, list):
        return [retype(item) for item in value]
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return len(value)
    return {}


def malform(mode: MalformedMode, body: bytes) -> tuple[bytes, str]:
    """The damaged body and its content type (the original must be JSON)."""
    if mode is MalformedMode.NON_JSON:
        return NON_JSON_BODY, "text/html; charset=utf-8"
    if mode is MalformedMode.TRUNCATED:
        return body[: max(1, len(body) // 2)], "application/json"
    if mode is MalformedMode.EMPTY:
        return b"", "application/json"
    value = json.loads(body)
    if mode is MalformedMode.MISSING_KEYS:
        value = drop_keys(value)
    elif mode is MalformedMode.NULLS:
        value = nullify(value)
    elif mode is MalformedMode.WRONG_TYPES:
        value = retype(value)
    else:
        value = [value] if isinstance(value, dict) else {"data": value}
    return json.dumps(value).encode(), "application/json"
