"""Constrained value types for every boundary (HTTP bodies, stored documents).

Strings must be storable (UTF-8 encodable: no lone surrogates) and printable (no control characters but
tab/newline in free text); integers must fit MongoDB's int64. Bad input is a clear 422, never a 500 deep in
a driver.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Union

from pydantic import AfterValidator, BeforeValidator, Field, GetJsonSchemaHandler, PlainValidator
from pydantic.json_schema import JsonSchemaValue
from typing_extensions import TypeAliasType

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


def single_line(value: str) -> str:
    _storable(value)
    if "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ValueError(f"not an IP address: {value[:50]!r}") from exc


class Documented:
    """The rule of a validator above, written into the JSON schema only (the validator keeps its clearer
    message), so that a client, or a fuzzer, that follows the API's document sends what is accepted.
    A narrower pattern given where the type is used (a name's) is kept: it implies this one."""

    def __init__(self, **schema: Any) -> None:
        self.schema = schema

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        generated = handler(core_schema)
        target = handler.resolve_ref_schema(generated)
        for key, value in self.schema.items():
            target.setdefault(key, value)
        return generated


_TEXT_SCHEMA = Documented(pattern="^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$")
_LINE_SCHEMA = Documented(pattern="^[^\\x00-\\x1f\\x7f]*$")
_IP_SCHEMA = Documented(anyOf=[{"format": "ipv4"}, {"format": "ipv6"}])


def _not_a_number(value: Any) -> Any:
    # pydantic's lax mode reads 0 as 1970-01-01 and as false; a client sending a number here is wrong.
    if isinstance(value, int | float):
        raise ValueError("a JSON number is not accepted here")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _an_instant(value: Any) -> Any:
    # Lax mode also reads a string of digits ("0") as seconds since 1970; the API documents ISO 8601.
    _not_a_number(value)
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("an ISO 8601 date-time is expected (e.g. 2026-12-05T07:35:09Z)")
    return value


Instant = Annotated[datetime, BeforeValidator(_an_instant)]
"""A point in time: an ISO 8601 string (or a datetime), never a number."""
def _only_bool(value: Any) -> bool:
    # Lax mode would also take 0, 1, "yes" and "off".
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


Flag = Annotated[bool, BeforeValidator(_only_bool)]


def _not_a_bool(value: Any) -> Any:
    # Lax mode reads `true` as 1: a client sending a boolean for a number is wrong.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


Integer = Annotated[int, BeforeValidator(_not_a_bool)]
Number = Annotated[float, BeforeValidator(_not_a_bool)]
"""A boolean: `true` or `false`, nothing that pydantic's lax mode would read as one."""

Text = Annotated[str, AfterValidator(_storable), Field(max_length=4000), _TEXT_SCHEMA]
"""Free text (reasons, descriptions)."""
LongText = Annotated[str, AfterValidator(_storable), Field(max_length=1_000_000), _TEXT_SCHEMA]
"""A document in a field (e.g. a lab topology YAML)."""
Label = Annotated[str, AfterValidator(single_line), Field(max_length=256), _LINE_SCHEMA]
"""A single-line name or value (names, tags, versions)."""
IpAddress = Annotated[str, AfterValidator(_ip), Field(max_length=64), _IP_SCHEMA]
#: The integer range the API takes, inside MongoDB's int64: 2**63 - 1 is not a double, and the API's document
#: carries its bounds as doubles (`9.223372036854775e+18`, which in decimal is above 2**63 - 1), so a client
#: following the document would send what the database refuses. 9.2e18 is the same number as a double and
#: in decimal, and as good a bound in practice.
JSON_INT64_MAX = 9_200_000_000_000_000_000
JSON_INT64_MIN = -JSON_INT64_MAX
Int64 = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=JSON_INT64_MIN, le=JSON_INT64_MAX)]
Count = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=0, le=JSON_INT64_MAX)]
"""A non-negative integer that MongoDB can store."""
AWS_REGION_RE = r"[a-z]{2}(?:-gov)?-[a-z]+-\d"
AwsRegion = Annotated[str, Field(pattern=rf"^{AWS_REGION_RE}$", max_length=32)]
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
        if not JSON_INT64_MIN <= value <= JSON_INT64_MAX:
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


def _storable_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    storable_json(value)
    return value


STORABLE_KEY_PATTERN = "^(?:[^$.\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f][^.\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*)?$"
# What `storable_json` accepts, as a type only for the API's document (validation stays `storable_json`, which
# also bounds the depth, something a recursive schema cannot say): keys that neither start with `$` nor contain
# `.`, printable strings, int64 integers, at most 500 keys and 1000 items.
# mypy cannot resolve a TypeAliasType that names itself (python/mypy#18252): it reports the alias and each
# self-reference as a "possible cyclic definition" [misc]; the ignores below are for that and nothing else.
StorableJson = TypeAliasType("StorableJson", Union[  # type: ignore[misc]  # noqa: UP007 - recursive: explicit form
    Annotated[str, Field(pattern="^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$")],
    Annotated[int, Field(ge=JSON_INT64_MIN, le=JSON_INT64_MAX)], float, bool,
    Annotated[list["StorableJson"], Field(max_length=1000)],  # type: ignore[misc]  # mypy#18252
    Annotated[dict[Annotated[str, Field(pattern=STORABLE_KEY_PATTERN)], "StorableJson"],  # type: ignore[misc]
              Field(max_length=500)],
    None,
])

JsonObject = Annotated[dict[str, Any], PlainValidator(
    _storable_object, json_schema_input_type=Annotated[
        dict[Annotated[str, Field(pattern=STORABLE_KEY_PATTERN)], StorableJson], Field(max_length=500)])]
"""A JSON object passed through as it is (e.g. CML compute details), checked to be storable."""
