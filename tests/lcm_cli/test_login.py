"""`lcm login|whoami|logout` against a real CPA: the session kept user-only (0600) and never the password,
used for reads and changes, overridden by a token, ended on the API at logout; refused logins."""

from __future__ import annotations

import json
import stat

import httpx

from tests.fixtures.control_plane import ADMIN_PASSWORD, discovered
from tests.lcm_cli.conftest import assert_one_line_error

ADMIN = {"LCM_USERNAME": "admin", "LCM_PASSWORD": ADMIN_PASSWORD}


def test_login_keeps_a_private_session_that_works_until_logout(control_plane, run_lcm, config_home) -> None:
    cp = control_plane
    logged_in = run_lcm("login", token=None, env=ADMIN)
    assert logged_in.code == 0, logged_in.err
    stored_at = config_home / "credentials.json"
    assert logged_in.out.strip() == f"logged in to {cp.url} as admin (roles: admin); session kept in {stored_at}"
    assert ADMIN_PASSWORD not in logged_in.out + logged_in.err
    assert stat.S_IMODE(stored_at.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o700
    kept = stored_at.read_text()
    assert ADMIN_PASSWORD not in kept
    session = json.loads(kept)["sessions"][cp.url]["session"]

    me = run_lcm("whoami", token=None)
    assert me.out.strip() == f"admin at {cp.url} (roles: admin; via lcm login)"
    with cp.client() as http:
        worker_id = http.post("/api/internal/workers/bulk-import", headers=cp.leader(),
                              json={"instances": [discovered(1, state="stopped")]}).json()["created"][0]
    started = run_lcm("--json", "workers", "start", worker_id, token=None)  # a change, with the session
    assert started.code == 0, started.err
    assert json.loads(started.out)["desired_status"] == "running"

    # A token given wins over the kept session.
    viewer = run_lcm("--token", cp.viewer_token, "--json", "whoami", token=None)
    assert (json.loads(viewer.out)["subject"], json.loads(viewer.out)["credentials"]) == ("test-viewer", "--token")

    logged_out = run_lcm("logout", token=None)
    assert logged_out.out.strip() == f"logged out of {cp.url}"
    assert cp.url not in json.loads(stored_at.read_text())["sessions"]
    # Ended on the API too: the old session no longer opens anything.
    assert httpx.get(f"{cp.url}/api/auth/me", cookies={"lcm_session": session}).status_code == 401
    assert_one_line_error(run_lcm("whoami", token=None), "not authenticated (401)")


def test_refused_logins(control_plane, run_lcm, config_home) -> None:
    wrong = run_lcm("login", token=None, env={"LCM_USERNAME": "admin", "LCM_PASSWORD": "not-the-password"})
    assert_one_line_error(wrong, "not authenticated (401)", "wrong username or password")
    assert "not-the-password" not in wrong.err
    assert not (config_home / "credentials.json").exists()
    # No credentials in the environment and no terminal to ask on: a usage error, not a hang or a traceback.
    unasked = run_lcm("login", token=None)
    assert unasked.code == 2
    assert unasked.err.strip().startswith("lcm: no username given")
    assert_one_line_error(run_lcm("login", "--username", "ghost", token=None, env={"LCM_PASSWORD": "whatever1"}),
                          "not authenticated (401)")
