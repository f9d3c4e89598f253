"""Controller loops: a periodic loop and a level-triggered reconcile loop, both counting their runs (`LoopStats`).

`ReconcileLoop` is a keyed work queue in the style of Kubernetes controllers:
- triggers (a watch, a periodic resync, an explicit requeue) only *enqueue a key*; the reconciler reads
  desired and observed state itself, so duplicate or lost triggers are harmless (level-triggered);
- one key is never reconciled twice at once: a key enqueued while it runs is marked dirty and runs
  again right after; different keys run concurrently up to `concurrency`;
- a failed reconcile is retried with per-key exponential backoff (capped), reset on success.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lcm_core.aio import stop_if_cancelled

logger = logging.getLogger(__name__)


@dataclass
class LoopStats:
    """What a controller reports per loop (its `/status`, and the CPA's `GET /api/system/controllers`)."""

    name: str
    interval_seconds: float
    running: bool = False
    runs: int = 0
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    """Runs that failed since the last success: what an alert on a failing loop waits for."""
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_duration_seconds: float | None = None
    last_error: str | None = None
    started: datetime | None = None
    """When the loop last began running (its replica became leader): a loop whose first run never ends has
    no `last_success` of this term, and this is what its stall is measured from."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        """Percentage of successful runs, None before the first run."""
        return round(100.0 * self.successes / self.runs, 1) if self.runs else None

    def start(self) -> None:
        self.running = True
        self.started = datetime.now(UTC)

    def record(self, ok: bool, started: float, error: str | None = None) -> None:
        self.runs += 1
        self.last_run = datetime.now(UTC)
        if ok:
            self.successes += 1
            self.consecutive_failures = 0
            self.last_success = self.last_run
        else:
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = error
        self.last_duration_seconds = round(time.monotonic() - started, 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "running": self.running,
            "interval_seconds": self.interval_seconds,
            "runs": self.runs,
            "successes": self.successes,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "success_rate": self.success_rate,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_duration_seconds": self.last_duration_seconds,
            "last_error": self.last_error,
            "started": self.started.isoformat() if self.started else None,
            **self.extra,
        }


class PeriodicLoop:
    """Runs `body` every `interval` seconds (measured start to start) until cancelled.

    A failing run is logged and counted, then the loop waits with exponential backoff (capped at
    `max_backoff`) instead of the interval, so a broken dependency is not hammered.
    """

    def __init__(
        self,
        name: str,
        body: Callable[[], Awaitable[None]],
        interval: Callable[[], float] | float,
        max_backoff: float = 300.0,
    ) -> None:
        self.name = name
        self._body = body
        self._interval = interval if callable(interval) else (lambda: float(interval))
        self._max_backoff = max_backoff
        self.stats = LoopStats(name=name, interval_seconds=self._interval())
        self._wake = asyncio.Event()
        self._done_elsewhere_at: float | None = None

    def trigger(self) -> None:
        """Run the next iteration now instead of waiting for the interval."""
        self._wake.set()

    def ran_elsewhere(self, started: float) -> None:
        """This loop's work has just been done by someone else (started at `started`, monotonic): it counts
        as a successful run, and the next run waits a full interval from now."""
        self.stats.record(True, started)
        self._done_elsewhere_at = time.monotonic()
        self._wake.set()

    async def run(self) -> None:
        self.stats.start()
        consecutive_failures = 0
        try:
            while True:
                started = time.monotonic()
                interval = self._interval()
                self.stats.interval_seconds = interval
                try:
                    await self._body()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    stop_if_cancelled()  # a client library may turn our cancellation into its own error
                    consecutive_failures += 1
                    self.stats.record(False, started, f"{type(exc).__name__}: {exc}")
                    logger.exception("%s run failed", self.name)
                    delay = min(self._max_backoff, interval * 2 ** (consecutive_failures - 1))
                else:
                    consecutive_failures = 0
                    self.stats.record(True, started)
                    delay = max(0.0, interval - (time.monotonic() - started))
                await self._rest(delay, interval)
        finally:
            self.stats.running = False

    async def _rest(self, delay: float, interval: float) -> None:
        """Wait `delay` seconds, less if triggered; a run done elsewhere restarts the interval from then."""
        self._wake.clear()
        self._done_elsewhere_at = None
        while True:
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                return
            if self._done_elsewhere_at is None:
                return  # triggered: run now
            delay = max(0.0, interval - (time.monotonic() - self._done_elsewhere_at))
            self._done_elsewhere_at = None
            self._wake.clear()


@dataclass(frozen=True)
class ReconcileResult:
    """Outcome of one reconcile: done, or come back after `requeue_after` seconds."""

    requeue_after: float | None = None

    @classmethod
    def done(cls) -> ReconcileResult:
        return cls()

    @classmethod
    def requeue(cls, after: float) -> ReconcileResult:
        return cls(requeue_after=after)


Reconcile = Callable[[str], Awaitable[ReconcileResult]]
ListKeys = Callable[[], Awaitable[Iterable[str]]]


class ReconcileLoop:
    """Keyed, level-triggered work queue with bounded concurrency, per-key backoff and periodic resync."""

    def __init__(
        self,
        name: str,
        reconcile: Reconcile,
        list_keys: ListKeys,
        resync_interval: Callable[[], float] | float,
        concurrency: int = 16,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._list_keys = list_keys
        self._resync_interval = resync_interval if callable(resync_interval) else (
            lambda: float(resync_interval)
        )
        self._concurrency = concurrency
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.stats = LoopStats(name=name, interval_seconds=self._resync_interval())
        self.resync_stats = LoopStats(name=f"{name}-resync", interval_seconds=self._resync_interval())

    # -- triggers -------------------------------------------------------------------------------
    def enqueue(self, key: str, after: float = 0.0) -> None:
        """Ask for `key` to be reconciled (now, or after `after` seconds). Idempotent."""
        if after > 0:
            existing = self._timers.get(key)
            due = asyncio.get_running_loop().time() + after
            if existing is not None and existing.when() <= due:
                return  # an earlier wake-up is already scheduled
            if existing is not None:
                existing.cancel()
            self._timers[key] = asyncio.get_running_loop().call_at(due, self._fire_timer, key)
            return
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def forget(self, key: str) -> None:
        """Drop backoff state and pending timers of a key whose object is gone."""
        self._failures.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _fire_timer(self, key: str) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    @property
    def depth(self) -> int:
        """Keys waiting to run."""
        return self._queue.qsize()

    def backoff_for(self, failures: int) -> float:
        """Delay before retrying a key that failed `failures` times in a row (with ±10% jitter)."""
        delay = min(self._backoff_cap, self._backoff_base * 2 ** max(0, failures - 1))
        return delay * random.uniform(0.9, 1.1)

    # -- running --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Run workers and the resync loop until cancelled."""
        self.stats.start()
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                 for i in range(self._concurrency)]
        resync = PeriodicLoop(f"{self.name}-resync", self._resync, self._resync_interval)
        resync.stats = self.resync_stats
        tasks.append(asyncio.create_task(resync.run(), name=f"{self.name}-resync"))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.stats.running = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    async def _resync(self) -> None:
        """Every listed key, except one waiting out its backoff: the resync comes round far more often than the
        backoff grows (seconds against minutes), and a key that keeps failing (a launch AWS refuses, a CML that
        does not answer) would be retried at every resync. A trigger (`enqueue`: something changed) still runs
        it at once."""
        for key in await self._list_keys():
            if self._failures.get(key) and key in self._timers:
                continue
            self.enqueue(key)

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self._run_one(key)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)

    async def _run_one(self, key: str) -> None:
        started = time.monotonic()
        try:
            result = await self._reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stop_if_cancelled()
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = self.backoff_for(failures)
            self.stats.record(False, started, f"{key}: {type(exc).__name__}: {exc}")
            logger.warning(
                "%s: reconcile of %s failed (%s in a row), retrying in %.1fs: %s",
                self.name, key, failures, delay, exc,
            )
            self.enqueue(key, after=delay)
            return
        self._failures.pop(key, None)
        self.stats.record(True, started)
        if result.requeue_after is not None:
            self.enqueue(key, after=result.requeue_after)
