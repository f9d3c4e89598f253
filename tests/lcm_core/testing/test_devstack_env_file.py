"""`.lcm/dev/stack.env` as a shell sources it: every variable exported, every value exactly as written (quotes,
`$`, backticks, spaces and all), and read back the same by the reader the tests use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lcm_core.testing.devstack import env_file

VALUES = {
    "LCM_API_URL": "http://127.0.0.1:8151",
    "LCM_TOKEN": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJkZXYtYWRtaW4ifQ.c2lnbmF0dXJl",
    "CML_WORKER_URL_TEMPLATE": "http://127.0.0.1:9000/hosts/{instance_id}",
    "TRICKY": "it's a \"value\" with $HOME, `date`, $(id) and  two  spaces; # not a comment",
    "EMPTY": "",
}


def test_sourcing_exports_every_variable_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    path.write_text(env_file.render(VALUES))
    assert all(line.startswith(("export ", "#")) for line in path.read_text().splitlines())
    # `env` lists only exported variables: sourced without `set -a`, they are there for child processes.
    shown = subprocess.run(["bash", "-c", f'source "{path}"; env -0'], capture_output=True, check=True,
                           env={"PATH": "/usr/bin:/bin"}).stdout
    exported = dict(item.split("=", 1) for item in shown.decode().split("\0") if "=" in item)
    assert {name: exported.get(name) for name in VALUES} == VALUES
    assert env_file.read(path) == VALUES


def test_render_refuses_what_a_shell_cannot_name_and_parse_refuses_what_is_not_an_assignment() -> None:
    with pytest.raises(ValueError, match="not a shell variable name"):
        env_file.render({"BAD-NAME": "x"})
    with pytest.raises(ValueError, match="not a variable assignment"):
        env_file.parse("export A=1 B=2\n")
    assert env_file.parse("# comment\n\nA=plain\nexport B='quoted value'\n") == {"A": "plain", "B": "quoted value"}


def test_sourcing_puts_the_venv_first_on_path_and_the_reader_skips_that_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "the venv's bin"
    bin_dir.mkdir()
    program = bin_dir / "lcm"
    program.write_text("#!/bin/sh\necho \"lcm sees $LCM_API_URL\"\n")
    program.chmod(0o755)
    path = tmp_path / "stack.env"
    path.write_text(env_file.render(VALUES, bin_dir=bin_dir))
    shown = subprocess.run(["bash", "-c", f'source "{path}"; lcm; echo "$PATH"'], capture_output=True, text=True,
                           check=True, env={"PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert shown == [f"lcm sees {VALUES['LCM_API_URL']}", f"{bin_dir}:/usr/bin:/bin"]
    assert env_file.read(path) == VALUES
