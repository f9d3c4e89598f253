"""What every command gets: the API client, where it points, and how to print (a table, or the API's JSON)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from lcm_cli import render
from lcm_cli.config import CredentialStore, Target
from lcm_cli.transport.client import ApiClient, UnexpectedAnswer

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
        """A remark for the person at the terminal (stderr: it never mixes with what a script reads), escaped
        (it may quote the API: a reconnect's reason)."""
        print(render.printable(text), file=self.err, flush=True)

    def emit(self, data: Any, human: Callable[[], str]) -> None:
        # Human text is escaped as a whole too: a message built from the answer's values (`session X created`)
        # does not go through the table's cells. JSON is escaped by json.dumps itself (ASCII only).
        self.print(render.as_json(data) if self.json else render.printable_lines(human()))

    def emit_page(self, page: dict[str, Any], what: str, human: Callable[[list[Any]], str]) -> None:
        """A list answer (`items`, `total`): the page's JSON, or its table and a note when there is more."""
        if self.json:
            self.print(render.as_json(page))
            return
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise UnexpectedAnswer(f"a page of {what} ({{items, total}}) was expected")
        if not items:
            self.note(f"no {what}")
            return
        self.print(render.printable_lines(human(items)))
        total = page.get("total")
        note = render.page_note(len(items), total if isinstance(total, int) else len(items), what)
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


def read_bounded(source: str, limit: int, what: str) -> bytes:
    """A file given on the command line (`-`: stdin) as bytes, read at most one past `limit` whatever the source is
    (a FIFO, /dev/zero, a file still growing: its size is never trusted); over `limit` it is refused."""
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(source).open("rb") as found:
                raw = found.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {source}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise UsageError(f"{what} {source} is over {limit} bytes")
    return raw


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


#: The longest wait a duration option takes (a day): beyond it a timer overflows, and no answer is worth it.
MAX_SECONDS = 86_400


def duration(text: str) -> float:
    """A duration in seconds: above zero, at most `MAX_SECONDS`."""
    value = positive_float(text)
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} is not within (0, {MAX_SECONDS}] seconds")
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
