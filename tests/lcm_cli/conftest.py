"""The `lcm` command line against a real control-plane API over HTTP (tests/fixtures/control_plane.py).

`run_lcm` runs the CLI's `main` in this process (as the console script would, with its own environment and a
config directory of the test's own), and returns its exit status and what it printed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lcm_cli.main import main


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


LcmRunner = Callable[..., Ran]


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "lcm-config"


@pytest.fixture
def run_lcm(control_plane, capsys, monkeypatch, config_home) -> LcmRunner:
    """`run_lcm("workers", "list", token=...)`: LCM_API_URL is the test's CPA, LCM_TOKEN the admin token unless
    `token` says otherwise (None: no token at all)."""
    default_token = control_plane.admin_token

    def run(*argv: str, token: str | bool | None = True, env: dict[str, str] | None = None) -> Ran:
        for name in ("LCM_API_URL", "LCM_TOKEN", "LCM_USERNAME", "LCM_PASSWORD", "XDG_CONFIG_HOME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LCM_API_URL", control_plane.url)
        monkeypatch.setenv("LCM_CONFIG_DIR", str(config_home))
        if token is True:
            monkeypatch.setenv("LCM_TOKEN", default_token)
        elif isinstance(token, str):
            monkeypatch.setenv("LCM_TOKEN", token)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own refusals
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def rows_of(table: str) -> list[dict[str, str]]:
    """A table read back: each row as {header: cell}. Cells are never empty (`-`) and never hold two spaces in a
    row, so two spaces or more separate columns."""
    header, *lines = table.splitlines()
    names = re.split(r"\s{2,}", header.strip())
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines]
    assert all(len(row) == len(names) for row in rows), table
    return [dict(zip(names, row, strict=True)) for row in rows]


def assert_one_line_error(ran: Ran, *expected: str) -> None:
    assert ran.code == 1, (ran.code, ran.out, ran.err)
    assert ran.out == ""
    message = ran.err.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("lcm: ")
    assert "Traceback" not in ran.err
    for text in expected:
        assert text in message, message
