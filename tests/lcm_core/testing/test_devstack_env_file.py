"""`.lcm/dev/stack.env` as a shell sources it: every variable exported, every value exactly as written (quotes,
`$`, backticks, spaces, line breaks and all), and read back the same by the reader the tests use; written by the
stack user-only from the moment it exists."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from lcm_core.testing.devstack import env_file
from lcm_core.testing.devstack.stack import Stack

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
        env_file.parse("export A=1\necho hi\n")
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


def test_a_value_with_a_line_break_round_trips_through_the_reader_and_bash(tmp_path: Path) -> None:
    values = {"LCM_NOTE": "first\nsecond", "LCM_QUOTE": "it's $HOME `x`", "AFTER": "plain"}
    text = env_file.render(values)
    assert env_file.parse(text) == values
    path = tmp_path / "stack.env"
    path.write_text(text)
    out = subprocess.run(["bash", "-c", f"source '{path}'; printf '%s\\0%s\\0%s' \"$LCM_NOTE\" \"$LCM_QUOTE\" "
                                        f"\"$AFTER\""], capture_output=True, text=True, check=True).stdout
    assert out.split("\0") == list(values.values())
    with pytest.raises(ValueError, match="not a file of variable assignments"):
        env_file.parse("export A='unclosed\n")


def _stack_values() -> dict[str, str]:
    keys = ["LCM_API_URL", "LCM_ADMIN_TOKEN", "LCM_VIEWER_TOKEN", "CONTROL_PLANE_API_KEY", "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION",
            "WORKER_DISCOVERY_REGIONS", "WORKER_DISCOVERY_AMI_NAME", "CML_SIMULATOR_URL", "CML_WORKER_URL_TEMPLATE",
            "CML_WORKER_API_USERNAME", "CML_WORKER_API_PASSWORD", "MONGODB_URL", "REDIS_URL", "ETCD_HOST",
            "ETCD_PORT", "LCM_ADMIN_USER", "LCM_ADMIN_PASSWORD", "LCM_VIEWER_USER", "LCM_VIEWER_PASSWORD"]
    return {key: f"value-of-{key}" for key in keys}


def test_the_stack_writes_stack_env_private_from_its_creation(tmp_path: Path, monkeypatch) -> None:
    """The file holds the admin token, the API key and the AWS secret: it is 0600 before a byte is written (not
    written under the umask's 0644 and chmodded after), whatever the umask."""
    path = tmp_path / "stack.env"
    modes_when_written: list[int] = []
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args, **kwargs):
        modes_when_written.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    stack = SimpleNamespace(options=SimpleNamespace(env_file=path), env=_stack_values())
    old = os.umask(0o022)
    try:
        Stack._write_env_file(stack)  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert modes_when_written == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert env_file.read(path)["LCM_TOKEN"] == "value-of-LCM_ADMIN_TOKEN"


def test_a_stale_temporary_file_or_a_symlink_in_its_place_is_not_written_through(tmp_path: Path) -> None:
    path = tmp_path / "stack.env"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched\n")
    path.with_suffix(".tmp").symlink_to(elsewhere)
    stack = SimpleNamespace(options=SimpleNamespace(env_file=path), env=_stack_values())
    Stack._write_env_file(stack)  # type: ignore[arg-type]
    assert elsewhere.read_text() == "untouched\n"
    assert not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_suffix(".tmp").exists()
