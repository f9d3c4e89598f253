"""CPU-heavy, pure work (parsing and checking a topology of up to a megabyte) in a separate process.

A worker thread is not enough: the YAML parser and pydantic's validator run in C and hold the interpreter
lock for long stretches, so the event loop, which needs the lock for every request it serves, stalled
behind them (`/api/health` took 150-200 ms at the 99th percentile during a 700 KB upload). In another
process the parse runs on its own core and the loop keeps answering in milliseconds.

One worker process per CPA process, started on first use (a spawned interpreter imports the domain modules
once, about a second) and replaced if it dies. One, not several: uploads of large topologies are rare, and a
pool of several whose one process died cannot be torn down cleanly on Python 3.11 (its manager thread waits
for the survivors forever). The work sent must be a module-level function with
picklable arguments and result.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_current: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _current
    with _lock:
        if _current is None:
            # spawn, not fork: the CPA has threads (the loop's executors, the Redis and Mongo clients), and a
            # forked copy of a threaded process can inherit locks held mid-operation.
            _current = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _current


def _discard(broken: ProcessPoolExecutor) -> None:
    # Only forgotten: a broken pool's own manager thread is already tearing it down, and a shutdown from here
    # would race it (CPython's manager then fails in a thread of its own).
    global _current
    with _lock:
        if _current is broken:
            _current = None


class CpuPool:
    """Runs a pure function in the process pool (`application.lablet_definitions.OffLoop`)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        pool = _pool()
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool:
            _discard(pool)  # its process died (killed, out of memory): a new one, and this call once more
            return await asyncio.wrap_future(_pool().submit(fn, *args))
