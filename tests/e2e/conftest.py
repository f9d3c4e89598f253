"""The dashboard end to end: the local stack (`python -m lcm_core.testing.devstack`, one per test session,
shared by every module) and headless Chromium driven by Playwright. The browser is Debian's `chromium`
(`.ci/run` installs it); without one the tests are skipped with the reason, or fail when `CI` is set.
Playwright never downloads a browser here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import (
    CHROMIUM_ARGS,
    DEMO_WORKERS,
    STREAM_LIFETIME_SECONDS,
    LocalStack,
    chromium_binary,
    running_devstack,
)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    if chromium_binary() is None:
        missing = "no chromium binary on PATH (.ci/run installs Debian's chromium; apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (CI is set: the dashboard tests must run)")
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("e2e-stack")
    # The API ends each event stream after this long, so every browser here also reconnects (Last-Event-ID).
    with running_devstack(root, {"SSE_MAX_CONNECTION_SECONDS": str(STREAM_LIFETIME_SECONDS)}) as env:
        stack = LocalStack(env=env, root=root)
        stack.wait_for_workers(lambda ws: len(stack.demo_workers(ws)) == DEMO_WORKERS,
                               "discovery of the seeded instances")
        yield stack


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
