"""What the CLI prints: aligned tables and `key: value` blocks for people, the API's JSON for scripts.
Pure: strings in, strings out (the commands write them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

#: A cell wider than this is cut with an ellipsis (ids and names stay whole; long reasons do not push the
#: table off the screen). The last column is never cut: nothing follows it.
MAX_CELL = 48
ELLIPSIS = "…"
MISSING = "-"


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def cell(value: Any) -> str:
    """One value as a table shows it: nothing is `-`, times to the second, floats to one decimal."""
    if value is None or value == "" or value == []:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        return when(value)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return " ".join(str(value).split())  # no line break inside a row


def when(iso: str) -> str:
    """An ISO 8601 instant as `2026-01-01 12:00:00` (UTC as the API gives it), or the text when it is not one."""
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[str] = ()) -> str:
    """Columns aligned on the widest cell (at most `MAX_CELL`, the last column whole), two spaces apart;
    numbers, and the columns named in `right` (figures already formatted), right-aligned."""
    texts = [[cell(v) for v in row] for row in rows]
    last = len(headers) - 1
    texts = [[t if i == last else _cut(t, MAX_CELL) for i, t in enumerate(row)] for row in texts]
    widths = [max([len(h)] + [len(row[i]) for row in texts]) for i, h in enumerate(headers)]
    def is_figure(value: Any) -> bool:
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))

    numeric = [headers[i] in right or (bool(rows) and all(is_figure(row[i]) for row in rows))
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in texts)])


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """`key: value` lines, the values aligned."""
    width = max((len(k) for k, _ in pairs), default=0) + 1
    return "\n".join(f"{(k + ':').ljust(width)}  {cell(v)}" for k, v in pairs)


def page_note(shown: int, total: int, what: str) -> str | None:
    """A note when a list is one page of more (None when everything is shown)."""
    if total <= shown:
        return None
    return f"{shown} of {total} {what} shown (--limit/--offset for more)"
