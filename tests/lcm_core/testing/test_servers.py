"""The command lines that start the embedded servers parse the way the servers expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcm_core.testing import servers
from lcm_core.testing.cml_simulator.__main__ import parse_args


@pytest.mark.parametrize("password", ["plain-password", "-starts-with-a-dash", "--double", "a b=c"])
def test_cml_simulator_command_line_carries_any_generated_password(tmp_path: Path, password: str) -> None:
    process = servers.cml_simulator(8443, tmp_path / "cml.log", "-user", password)
    args = parse_args(process.argv[3:])  # after: python -m lcm_core.testing.cml_simulator
    assert args.username == "-user"
    assert args.password == password
    assert args.port == 8443
