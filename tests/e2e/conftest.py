"""The dashboard end to end: the local stack (`python -m lcm_core.testing.devstack`, one per test session,
shared by every module) and headless Chromium driven by Playwright. The browser is Debian's `chromium`
(`.ci/run` installs it); without one the tests are skipped with the reason. Playwright never downloads a
browser here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lcm_core.testing.processes import free_port
from tests.e2e.stack import (
    CHROMIUM_ARGS,
    DEMO_WORKERS,
    STREAM_LIFETIME_SECONDS,
    LocalStack,
    chromium_binary,
    read_env,
)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    if chromium_binary() is None:
        pytest.skip("no chromium binary on PATH (.ci/run installs Debian's chromium; apt-get install chromium)")
    root = tmp_path_factory.mktemp("e2e-stack")
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    env["LCM_API_PORT"] = str(free_port())
    # The API ends each event stream after this long, so every browser here also reconnects (Last-Event-ID).
    env["SSE_MAX_CONNECTION_SECONDS"] = str(STREAM_LIFETIME_SECONDS)
    log_path = root / "devstack.out"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "lcm_core.testing.devstack", "--root", str(root),
                                 "--replicas", "1"], stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        env_file = root / ".lcm" / "dev" / "stack.env"
        started = time.monotonic()
        try:
            while not env_file.exists():
                if proc.poll() is not None or time.monotonic() - started > 120:
                    raise AssertionError(f"the local stack did not start:\n{log_path.read_text()[-5000:]}")
                time.sleep(0.2)
            stack = LocalStack(env=read_env(env_file), root=root)
            stack.wait_for_workers(lambda ws: len(stack.demo_workers(ws)) == DEMO_WORKERS,
                                   "discovery of the seeded instances")
            yield stack
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread while it is
# open, and the asyncio tests collected after tests/e2e could not start theirs.
@pytest.fixture(scope="module")
def browser(local_stack: LocalStack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_binary(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
