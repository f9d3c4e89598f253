"""Where `lcm` finds the API and its credentials (lcm_cli/config.py): a token as a shell hands it over (a CRLF
file, a trailing newline) works, one that HTTP cannot carry is a usage error that never repeats it, a URL's
user-info never shows in a message, and the credentials file is written privately and whole."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lcm_cli.config import CredentialStore, StoredSession
from lcm_cli.transport.client import ApiError, Credentials
from lcm_cli.transport.events import EventTail
from lcm_core.testing.processes import free_port
from tests.lcm_cli.conftest import assert_one_line_error

LCM = Path(sys.executable).parent / "lcm"
SECRET = "s3cr3t-token-value"


def test_a_token_with_surrounding_whitespace_is_used_trimmed(control_plane, run_lcm) -> None:
    # `export LCM_TOKEN=$(cat token.txt)` of a file saved with CRLF keeps the \r.
    ran = run_lcm("--json", "workers", "list", token=control_plane.admin_token + "\r\n")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["total"] == 0
    refused = run_lcm("workers", "list", token=f" {SECRET}\r")
    assert_one_line_error(refused, "not authenticated (401)")
    assert SECRET not in refused.err


def test_a_token_http_cannot_carry_is_a_usage_error_that_does_not_repeat_it(run_lcm) -> None:
    for token, why in ((f"{SECRET}\r\nX-Other: 1", "control character"), (f"{SECRET}\x01", "control character"),
                       (f"tökén-{SECRET}", "not ASCII")):
        ran = run_lcm("workers", "list", token=token)
        assert ran.code == 2, (ran.code, ran.err)
        assert ran.err.strip() == ran.err.strip().splitlines()[0]
        assert ran.err.startswith("lcm: LCM_TOKEN holds a "), ran.err
        assert why in ran.err, ran.err
        assert SECRET not in ran.err + ran.out
    flagged = run_lcm("--token", f"{SECRET}\x7f", "workers", "list", token=None)
    assert (flagged.code, flagged.err.startswith("lcm: --token holds a control character")) == (2, True)


def test_events_tail_with_such_a_token_ends_at_once_without_printing_it(control_plane, tmp_path) -> None:
    env = {**os.environ, "LCM_API_URL": control_plane.url, "LCM_TOKEN": f"{SECRET}\r\nX: y",
           "LCM_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([str(LCM), "events", "tail"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stderr


def test_the_event_tail_gives_up_on_a_request_that_can_never_be_sent(control_plane) -> None:
    # Below the configuration's check: httpx refuses the header before sending (LocalProtocolError, whose text
    # quotes the header). Retrying cannot help, so the tail ends, and its message does not quote the header.
    retries: list[str] = []
    tail = EventTail(control_plane.url, Credentials(token=f"{SECRET}\rX"), notice=retries.append,
                     sleep=lambda _s: None)
    with pytest.raises(ApiError, match="could not be sent") as refused:
        next(tail.frames())
    assert SECRET not in refused.value.message
    assert retries == []
    no_scheme = EventTail("ftp://127.0.0.1:1", Credentials(), notice=retries.append, sleep=lambda _s: None)
    with pytest.raises(ApiError, match="http:// or https://"):
        next(no_scheme.frames())
    assert retries == []


def test_a_urls_user_info_never_shows_in_a_message(run_lcm) -> None:
    nobody = f"http://ops:hunter2@127.0.0.1:{free_port()}"
    ran = run_lcm("workers", "list", env={"LCM_API_URL": nobody})
    assert_one_line_error(ran, f"cannot reach the API at http://***@127.0.0.1:{nobody.rsplit(':', 1)[1]}")
    assert "hunter2" not in ran.err


def test_an_existing_config_directory_is_tightened_and_concurrent_writes_stay_whole(tmp_path) -> None:
    directory = tmp_path / "lcm"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    store = CredentialStore(directory)
    sessions = [StoredSession(f"http://api-{n}.example", f"session-{n}", "admin", ["admin"]) for n in range(8)]
    threads = [threading.Thread(target=store.put, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    # Each write went through a file of its own and a rename: the file is whole JSON (the last write's content,
    # which holds at least its own session), and no temporary file is left behind.
    kept = json.loads(store.path.read_text())["sessions"]
    assert kept
    assert all(value["session"] == f"session-{url.split('-')[1].split('.')[0]}"
                        for url, value in kept.items())
    assert sorted(p.name for p in directory.iterdir()) == ["credentials.json"]
