"""Serve an ASGI app with uvicorn on a real loopback socket in a background thread (tests, benches)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from lcm_core.testing.processes import free_port


@contextmanager
def serve_in_thread(app: Any, startup_timeout: float = 10.0, keep_alive_seconds: int = 75) -> Iterator[str]:
    """Yield the base URL (`http://127.0.0.1:PORT`) while uvicorn serves `app`.

    Idle connections stay open longer than clients keep them (httpx: 5 s), as the CPA does in production:
    with uvicorn's 5 s default, a busy test's client could reuse a connection the server was closing.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                       timeout_keep_alive=keep_alive_seconds)
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
