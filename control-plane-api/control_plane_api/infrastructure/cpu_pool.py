"""CPU-heavy, pure work (parsing and checking a topology of up to a megabyte) in a separate process.

A worker thread is not enough: the YAML parser and pydantic's validator run in C and hold the interpreter
lock for long stretches, so the event loop, which needs the lock for every request it serves, stalled
behind them (`/api/health` took 150-200 ms at the 99th percentile during a 700 KB upload). In another
process the parse runs on its own core and the loop keeps answering in milliseconds.

One small pool per CPA process, started on first use (a spawned interpreter imports the domain modules once,
about a second) and replaced if its process dies. The work sent must be a module-level function with
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
_pools: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            # spawn, not fork: the CPA has threads (the loop's executors, the Redis and Mongo clients), and a
            # forked copy of a threaded process can inherit locks held mid-operation.
            pool = _pools[workers] = ProcessPoolExecutor(max_workers=workers,
                                                         mp_context=multiprocessing.get_context("spawn"))
        return pool


def _discard(workers: int, broken: ProcessPoolExecutor) -> None:
    with _lock:
        if _pools.get(workers) is broken:
            del _pools[workers]
    broken.shutdown(wait=False, cancel_futures=True)


class CpuPool:
    """Runs a pure function in the process pool (`application.lablet_definitions.OffLoop`)."""

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        pool = _pool(self._workers)
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool:
            _discard(self._workers, pool)  # its process died (killed, out of memory): a new one next time
            return await asyncio.wrap_future(_pool(self._workers).submit(fn, *args))
