"""Reading typed values out of untrusted JSON, one key at a time (the machinery behind `parsers`).

A converter (`as_count`, `as_bytes`, ...) either returns the typed value or raises `BadValue` saying what
was expected; `Reader.get` turns that (or a missing/null key) into None plus one warning naming the key's
dotted path. Nothing here raises on bad input.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from lcm_core.domain.types import single_line

logger = logging.getLogger(__name__)

_JSON_NAMES = {dict: "a JSON object", list: "a JSON array", str: "a JSON string", bool: "a JSON boolean"}

T = TypeVar("T")


class BadValue(ValueError):
    """A value of the wrong type or range; the message says what was expected."""


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"is not a number ({type(value).__name__} {shown(value)})")
    if not math.isfinite(value):
        raise BadValue(f"is not finite ({value!r})")
    if value < 0:
        raise BadValue(f"is negative ({value!r})")
    return float(value)


def as_count(value: Any) -> int:
    """A non-negative integer (an integral float such as 48.0 is accepted)."""
    number = _finite_number(value)
    if not number.is_integer():
        raise BadValue(f"is not an integer ({value!r})")
    return int(number)


def as_bytes(value: Any) -> int:
    """A non-negative byte count; the spec types these as "number", so fractions are rounded."""
    return round(_finite_number(value))


def as_number(value: Any) -> float:
    return _finite_number(value)


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadValue(f"is not a boolean ({type(value).__name__} {shown(value)})")
    return value


#: The longest string a CML field may hold (a name, a status, a model): what the worker contract's labels allow.
MAX_STRING = 256
#: The most numbers of a list field (a CPU's load averages).
MAX_NUMBERS = 16


def as_str(value: Any) -> str:
    """A single-line, storable string of at most `MAX_STRING` characters (what the contract's labels take)."""
    if not isinstance(value, str):
        raise BadValue(f"is not a string ({type(value).__name__} {shown(value)})")
    if len(value) > MAX_STRING:
        raise BadValue(f"is longer than {MAX_STRING} characters ({len(value)})")
    try:
        single_line(value)
    except ValueError as exc:
        raise BadValue(f"is not a single line of text ({exc})") from exc
    return value


def as_numbers(value: Any) -> list[float]:
    if not isinstance(value, list):
        raise BadValue(f"is not a list ({type(value).__name__})")
    if len(value) > MAX_NUMBERS:
        raise BadValue(f"has more than {MAX_NUMBERS} items ({len(value)})")
    return [_finite_number(item) for item in value]


def parse_cml_timestamp(value: str) -> datetime:
    """Both CML forms: ISO 8601 (`2021-02-28T07:33:47+00:00`) and licensing's `2027-01-14 00:56:19`.

    A timestamp without a zone is UTC (CML hosts run in UTC; the licensing answer omits the zone).
    """
    parsed = datetime.fromisoformat(value.strip())
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def as_timestamp(value: Any) -> datetime:
    try:
        return parse_cml_timestamp(as_str(value))
    except ValueError as exc:
        raise BadValue(f"is not a timestamp ({shown(value)})") from exc


class Reader:
    """Reads one answer; records one warning per bad key, prefixed with the endpoint and host."""

    def __init__(self, endpoint: str, host: str | None, warnings: list[str] | None) -> None:
        self.endpoint = endpoint
        self.host = host or "?"
        self.warnings = warnings if warnings is not None else []

    def warn(self, key: str, problem: str) -> None:
        line = f"{self.endpoint}: '{key}' {problem}"
        self.warnings.append(line)
        logger.warning("CML %s %s; the field is left empty", self.host, line)

    def top(self, body: Any, expected: type) -> bool:
        """Check the answer's top-level type; a wrong one is one warning and an empty result."""
        if isinstance(body, expected):
            return True
        got = "empty" if body is None else _JSON_NAMES.get(type(body), f"a JSON {type(body).__name__}")
        line = f"{self.endpoint}: body is {got}, expected {_JSON_NAMES.get(expected, expected.__name__)}"
        self.warnings.append(line)
        logger.warning("CML %s %s; the whole answer is ignored", self.host, line)
        return False

    def get(self, parent: Mapping[str, Any] | None, path: str, key: str, convert: Callable[[Any], T], *,
            nullable: bool = False, optional: bool = False) -> T | None:
        """`parent[key]` converted, or None. `parent is None` means its own absence was already reported."""
        if parent is None:
            return None
        full = f"{path}.{key}" if path else key
        if key not in parent:
            if not optional:
                self.warn(full, "is missing")
            return None
        value = parent[key]
        if value is None:
            if not nullable:
                self.warn(full, "is null")
            return None
        try:
            return convert(value)
        except BadValue as exc:
            self.warn(full, str(exc))
            return None

    def obj(self, parent: Mapping[str, Any] | None, path: str, key: str, *,
            optional: bool = False) -> dict[str, Any] | None:
        """A nested object (`parent[key]` must be a dict)."""
        def convert(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise BadValue(f"is not an object ({type(value).__name__})")
            return value
        return self.get(parent, path, key, convert, optional=optional)
