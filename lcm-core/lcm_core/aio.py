"""Small asyncio rules shared by the leader-election and reconcile-loop toolkit.

Python 3.11's `asyncio.wait_for` can lose a cancellation: when the awaited call completes at the moment its
caller is cancelled, it returns the result and the CancelledError is gone (CPython gh-86296). A deposed
leader whose loop loses its cancellation goes on acting, so the toolkit bounds its calls with
`asyncio.timeout()` (no inner task, nothing to lose) and, where a library may turn a cancellation into an
error of its own, asks `cancellation_requested()` before carrying on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def cancellation_requested() -> bool:
    """Whether the running task has been asked to stop (a request some callee may have swallowed)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancelled() -> None:
    """Raise CancelledError when the running task has been asked to stop."""
    if cancellation_requested():
        raise asyncio.CancelledError


async def gather_or_cancel(*awaitables: Awaitable[T]) -> list[T]:
    """`asyncio.gather`, except that nothing is left running behind a failure: the first error cancels the
    others and is raised once they have stopped (as is a cancellation of the caller)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
