"""What every command gets: the API client, where it points, and how to print (a table, or the API's JSON)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote

from lcm_cli import render
from lcm_cli.config import CredentialStore, Target
from lcm_cli.transport.client import ApiClient

#: The bounds the API puts on paging (`limit` 1..1000).
MAX_LIMIT = 1000


@dataclass
class Context:
    api: ApiClient
    target: Target
    store: CredentialStore
    json: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A remark for the person at the terminal (stderr: it never mixes with what a script reads)."""
        print(text, file=self.err, flush=True)

    def emit(self, data: Any, human: Callable[[], str]) -> None:
        self.print(render.as_json(data) if self.json else human())

    def emit_page(self, page: dict[str, Any], what: str, human: Callable[[list[Any]], str]) -> None:
        """A list answer (`items`, `total`): the page's JSON, or its table and a note when there is more."""
        items = page.get("items", [])
        if self.json:
            self.print(render.as_json(page))
            return
        if not items:
            self.note(f"no {what}")
            return
        self.print(human(items))
        note = render.page_note(len(items), int(page.get("total", len(items))), what)
        if note:
            self.note(note)


class UsageError(Exception):
    """Input the CLI refuses before calling the API (exit status 2, like argparse's own refusals)."""


Handler = Callable[[Context, argparse.Namespace], int]
Subparsers = Any
"""argparse's subparsers action (its class is private to argparse)."""


def command(parent: Subparsers, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def group(parent: Subparsers, name: str, help_text: str) -> Subparsers:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=None, usage_of=parser)
    return parser.add_subparsers(title="commands", metavar="COMMAND")


def paging(parser: argparse.ArgumentParser, default_limit: int = 100) -> None:
    parser.add_argument("--limit", type=bounded_int(1, MAX_LIMIT), default=default_limit,
                        help=f"at most this many (1..{MAX_LIMIT}; default {default_limit})")
    parser.add_argument("--offset", type=bounded_int(0, 1_000_000), default=0, help="skip this many first")


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not within {low}..{high}")
        return value

    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0")
    return value


def seconds(text: str) -> float:
    """A duration in seconds: finite and above zero."""
    value = positive_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("a duration must be above 0 seconds")
    return value


def csv(values: list[str] | None) -> str | None:
    """Repeated or comma-separated option values, as the API's filters take them (comma-separated)."""
    found = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
    return ",".join(found) or None


def reason_body(reason: str | None) -> dict[str, Any] | None:
    return {"reason": reason} if reason else None


def seg(value: str) -> str:
    """An id as one path segment of a URL (a `/` or `..` in it cannot reach another route)."""
    return quote(value, safe="")
