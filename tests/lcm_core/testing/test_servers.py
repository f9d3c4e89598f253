"""The command lines that start the embedded servers parse the way the servers expect."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lcm_core.testing import servers
from lcm_core.testing.cml_simulator.__main__ import parse_args
from lcm_core.testing.processes import free_port


@pytest.mark.parametrize("password", ["plain-password", "-starts-with-a-dash", "--double", "a b=c"])
def test_cml_simulator_command_line_carries_any_generated_password(tmp_path: Path, password: str) -> None:
    process = servers.cml_simulator(8443, tmp_path / "cml.log", "-user", password)
    args = parse_args(process.argv[3:])  # after: python -m lcm_core.testing.cml_simulator
    assert args.username == "-user"
    assert args.password == password
    assert args.port == 8443


def test_cml_simulator_takes_a_password_that_begins_with_a_dash(tmp_path: Path) -> None:
    """The local stack generates the password (token_urlsafe): one in 64 begins with "-"."""
    port = free_port()
    process = servers.cml_simulator(port, tmp_path / "cml.log", "admin", "-starts-with-a-dash", boot_seconds=0)
    process.start()
    try:
        token = httpx.post(f"http://{servers.LOOPBACK}:{port}/hosts/i-0123456789abcdef0/api/v0/authenticate",
                           json={"username": "admin", "password": "-starts-with-a-dash"}, timeout=5)
        assert token.status_code == 200, token.text
    finally:
        process.stop()
