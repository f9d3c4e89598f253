"""`.lcm/dev/stack.env`: the local stack's settings as a shell script of `export NAME='value'` lines, so that
`source .lcm/dev/stack.env` hands them to every program started after (aws, curl, lcm), and a reader that gives
them back as a dict (the tests, anything that does not go through a shell)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER = "# The LCM local stack (make run); use it with: source .lcm/dev/stack.env\n"


#: The one line that is not a setting: it puts the venv's programs (lcm) first on the sourcing shell's PATH.
_PATH_LINE = re.compile(r"export PATH=.*:\"\$PATH\"")


def render(values: Mapping[str, str], bin_dir: Path | None = None) -> str:
    """The file's text; with `bin_dir`, a last line puts that folder first on the shell's PATH (so that `lcm`
    runs without naming the venv)."""
    for name in values:
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a shell variable name: {name!r}")
    lines = [f"export {name}={shlex.quote(value)}\n" for name, value in values.items()]
    if bin_dir is not None:
        lines.append(f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"\n')
    return HEADER + "".join(lines)


def parse(text: str) -> dict[str, str]:
    """The variables of a file `render` wrote (comments and blank lines skipped; `export` optional). The PATH line
    is skipped: it extends the sourcing shell's own PATH and means nothing without a shell."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if _PATH_LINE.fullmatch(line):
            continue
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        if not words:
            continue
        name, sep, value = words[0].partition("=")
        if len(words) != 1 or not sep or not _NAME.fullmatch(name):
            raise ValueError(f"not a variable assignment: {line!r}")
        found[name] = value
    return found


def read(path: Path) -> dict[str, str]:
    return parse(path.read_text())
