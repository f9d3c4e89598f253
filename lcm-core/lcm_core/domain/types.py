"""Constrained value types for every boundary (HTTP bodies, stored documents).

Strings must be storable (UTF-8 encodable: no lone surrogates) and printable (no control characters but
tab/newline in free text); integers must fit MongoDB's int64. Bad input is a clear 422, never a 500 deep in
a driver.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _storable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    if _CONTROL.search(value):
        raise ValueError("text must not contain control characters")
    return value


def _single_line(value: str) -> str:
    _storable(value)
    if "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ValueError(f"not an IP address: {value[:50]!r}") from exc


Text = Annotated[str, AfterValidator(_storable), Field(max_length=4000)]
"""Free text (reasons, descriptions)."""
LongText = Annotated[str, AfterValidator(_storable), Field(max_length=1_000_000)]
"""A document in a field (e.g. a lab topology YAML)."""
Label = Annotated[str, AfterValidator(_single_line), Field(max_length=256)]
"""A single-line name or value (names, tags, versions)."""
IpAddress = Annotated[str, AfterValidator(_ip), Field(max_length=64)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A non-negative integer that MongoDB can store."""
AwsRegion = Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", max_length=32)]
AmiId = Annotated[str, Field(pattern=r"^ami-[0-9a-f]{8,17}$")]
InstanceType = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*\.[a-z0-9-]+$", max_length=64)]


def storable_json(value: object, depth: int = 0) -> object:
    """Walk nested JSON: every string storable, every integer int64, bounded depth and size."""
    if depth > 8:
        raise ValueError("nested too deeply")
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise ValueError("integer out of range")
        return value
    if isinstance(value, dict):
        if len(value) > 500:
            raise ValueError("too many keys")
        for key, item in value.items():
            _storable(str(key))
            if str(key).startswith("$") or "." in str(key):
                raise ValueError(f"key {str(key)[:40]!r} may not start with '$' or contain '.'")
            storable_json(item, depth + 1)
        return value
    if isinstance(value, list):
        if len(value) > 1000:
            raise ValueError("too many items")
        for item in value:
            storable_json(item, depth + 1)
        return value
    raise ValueError(f"unsupported JSON value of type {type(value).__name__}")


JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
"""A JSON object passed through as it is (e.g. CML compute details), checked to be storable."""
