"""The embedded servers' command lines."""

from __future__ import annotations

import httpx

from lcm_core.testing import servers
from lcm_core.testing.processes import free_port


def test_cml_simulator_takes_a_password_that_begins_with_a_dash(tmp_path) -> None:
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
