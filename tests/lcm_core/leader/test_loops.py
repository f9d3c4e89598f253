"""The reconcile work queue and the periodic loop (pure asyncio: no servers involved)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from lcm_core.leader import LoopStats, PeriodicLoop, ReconcileLoop, ReconcileResult


async def run_for(loop_obj, seconds: float) -> None:
    task = asyncio.create_task(loop_obj.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_one_key_is_never_reconciled_twice_at_once() -> None:
    running: set[str] = set()
    overlaps = 0
    calls: list[str] = []

    async def reconcile(key: str) -> ReconcileResult:
        nonlocal overlaps
        if key in running:
            overlaps += 1
        running.add(key)
        calls.append(key)
        await asyncio.sleep(0.05)
        running.discard(key)
        return ReconcileResult.done()

    async def no_keys() -> list[str]:
        return []

    loop = ReconcileLoop("t", reconcile, no_keys, resync_interval=60, concurrency=4)
    task = asyncio.create_task(loop.run())
    for _ in range(20):  # a burst of triggers for the same key while it runs
        loop.enqueue("w1")
        loop.enqueue("w2")
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.4)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert overlaps == 0
    # Triggers that arrived while a key ran collapse into one more run, not twenty.
    assert 2 <= calls.count("w1") <= 4
    assert 2 <= calls.count("w2") <= 4
    assert loop.stats.successes == len(calls)


async def test_different_keys_run_concurrently_up_to_the_bound() -> None:
    in_flight = 0
    peak = 0

    async def reconcile(key: str) -> ReconcileResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return ReconcileResult.done()

    async def keys() -> list[str]:
        return [f"w{i}" for i in range(20)]

    loop = ReconcileLoop("t", reconcile, keys, resync_interval=60, concurrency=5)
    await run_for(loop, 0.5)
    assert peak == 5
    assert loop.stats.successes == 20  # the initial resync enqueued every key once


async def test_failures_back_off_exponentially_and_reset_on_success() -> None:
    attempts: list[float] = []

    async def reconcile(key: str) -> ReconcileResult:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) < 4:
            raise RuntimeError("EC2 throttled")
        return ReconcileResult.done()

    async def keys() -> list[str]:
        return ["w1"]

    loop = ReconcileLoop("t", reconcile, keys, resync_interval=60, backoff_base=0.05, backoff_cap=1.0)
    await run_for(loop, 0.8)
    assert len(attempts) == 4
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] == pytest.approx(0.05, abs=0.03)
    assert gaps[1] == pytest.approx(0.10, abs=0.04)
    assert gaps[2] == pytest.approx(0.20, abs=0.06)
    assert loop.stats.failures == 3
    assert loop.stats.successes == 1
    assert loop.stats.success_rate == 25.0
    assert "EC2 throttled" in (loop.stats.last_error or "")
    assert loop._failures == {}  # reset after the success


async def test_the_resync_leaves_a_failing_key_to_its_backoff_and_a_trigger_runs_it_at_once() -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> ReconcileResult:
        seen.append(key)
        if key == "failing":
            raise RuntimeError("no AMI matches")
        return ReconcileResult.done()

    async def keys() -> list[str]:
        return ["failing", "healthy"]

    loop = ReconcileLoop("t", reconcile, keys, resync_interval=0.05, backoff_base=60, backoff_cap=60)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.sleep(0.4)
        assert seen.count("healthy") >= 3  # the resync came round several times
        assert seen.count("failing") == 1  # and left the failing key to its 60 s backoff
        loop.enqueue("failing")  # a change of the key (a watch event) does not wait for the backoff
        await asyncio.sleep(0.1)
        assert seen.count("failing") == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_backoff_is_capped() -> None:
    async def never(key: str) -> ReconcileResult:
        raise AssertionError

    async def keys() -> list[str]:
        return []

    loop = ReconcileLoop("t", never, keys, resync_interval=60, backoff_base=1, backoff_cap=30)
    assert loop.backoff_for(20) <= 33


async def test_requeue_after_runs_the_key_again() -> None:
    calls = 0

    async def reconcile(key: str) -> ReconcileResult:
        nonlocal calls
        calls += 1
        return ReconcileResult.requeue(0.05) if calls < 3 else ReconcileResult.done()

    async def keys() -> list[str]:
        return ["w1"]

    loop = ReconcileLoop("t", reconcile, keys, resync_interval=60)
    await run_for(loop, 0.4)
    assert calls == 3


async def test_periodic_resync_enqueues_every_listed_key() -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> ReconcileResult:
        seen.append(key)
        return ReconcileResult.done()

    async def keys() -> list[str]:
        return ["a", "b"]

    loop = ReconcileLoop("t", reconcile, keys, resync_interval=0.1)
    await run_for(loop, 0.35)
    assert seen.count("a") >= 3
    assert seen.count("b") >= 3
    assert loop.resync_stats.runs >= 3


async def test_periodic_loop_counts_runs_and_backs_off_after_failure() -> None:
    outcomes = iter([None, RuntimeError("down"), None, None, None, None, None, None])
    times: list[float] = []

    async def body() -> None:
        times.append(asyncio.get_running_loop().time())
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    loop = PeriodicLoop("discovery", body, interval=0.1)
    await run_for(loop, 0.45)
    stats = loop.stats.to_dict()
    assert stats["failures"] == 1
    assert stats["successes"] >= 2
    assert stats["last_run"] is not None
    assert stats["last_duration_seconds"] is not None
    assert not stats["running"]
    # after the failure the loop waited one interval (the first backoff step) before retrying
    assert times[2] - times[1] == pytest.approx(0.1, abs=0.05)


async def test_periodic_loop_trigger_runs_now() -> None:
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1

    loop = PeriodicLoop("p", body, interval=60)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.05)
    loop.trigger()
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert runs == 2


async def test_periodic_loop_run_elsewhere_counts_and_restarts_the_interval() -> None:
    times: list[float] = []

    async def body() -> None:
        times.append(asyncio.get_running_loop().time())

    loop = PeriodicLoop("metrics", body, interval=0.3)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.2)  # first run at 0, the next one due at 0.3
    done_elsewhere = asyncio.get_running_loop().time()
    loop.ran_elsewhere(started=0.0)
    await asyncio.sleep(0.2)
    assert len(times) == 1  # not at 0.3: the work was just done, the interval runs from now
    await asyncio.sleep(0.25)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(times) == 2
    assert times[1] - done_elsewhere >= 0.29  # a full interval after the work done elsewhere
    assert loop.stats.runs == 3
    assert loop.stats.successes == 3


class ConvertedCancellation(Exception):
    """What some client libraries raise when the call they are in is cancelled (gRPC's CANCELLED status)."""


async def _call_that_turns_cancellation_into_an_error() -> None:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        raise ConvertedCancellation("the call was cancelled") from None


async def _stops_within(task: asyncio.Task, seconds: float) -> bool:
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return task in done and task.cancelled()


async def test_periodic_loop_stops_when_a_library_turns_its_cancellation_into_an_error() -> None:
    """A deposed leader's loop must stop, even when the call it was in reports the cancel as a failure."""
    started = asyncio.Event()

    async def body() -> None:
        started.set()
        await _call_that_turns_cancellation_into_an_error()

    task = asyncio.create_task(PeriodicLoop("converted", body, interval=0.01, max_backoff=0.01).run())
    await started.wait()
    stopped = await _stops_within(task, 2.0)
    if not stopped:
        task.cancel()  # the old behaviour: a loop that never ends; end it for the next tests
    assert stopped


async def test_reconcile_loop_stops_when_a_reconcile_turns_its_cancellation_into_an_error() -> None:
    started = asyncio.Event()

    async def reconcile(key: str) -> ReconcileResult:
        started.set()
        await _call_that_turns_cancellation_into_an_error()
        return ReconcileResult.done()

    async def keys() -> list[str]:
        return ["w1"]

    loop = ReconcileLoop("converted", reconcile, keys, resync_interval=0.01, backoff_base=0.01, backoff_cap=0.01)
    task = asyncio.create_task(loop.run())
    await started.wait()
    stopped = await _stops_within(task, 2.0)
    if not stopped:
        task.cancel()
    assert stopped
    assert loop.stats.failures == 0  # the cancel is not counted as a failed reconcile


def test_loop_stats_count_failures_in_a_row_and_remember_the_last_success() -> None:
    """What the failing-loop and stalled-loop alerts read (deploy/prometheus): failures since the last success,
    reset by a success, and when that success was."""
    stats = LoopStats(name="discovery", interval_seconds=60)
    stats.record(True, 0.0)
    succeeded = stats.last_success
    assert succeeded is not None
    stats.record(False, 0.0, "EC2 throttled")
    stats.record(False, 0.0, "EC2 throttled")
    assert (stats.consecutive_failures, stats.failures, stats.last_success) == (2, 2, succeeded)
    reported = stats.to_dict()
    assert reported["consecutive_failures"] == 2
    assert reported["last_success"] == succeeded.isoformat()
    stats.record(True, 0.0)
    assert stats.consecutive_failures == 0
    assert stats.last_success is not None
    assert stats.last_success >= succeeded
    assert stats.last_success == stats.last_run


async def test_a_loop_whose_first_run_hangs_reports_when_it_started_and_no_success() -> None:
    """What LcmControllerLoopStalled measures a new leader's loop from when it never finishes a run; each
    term (each `run()`) starts it again, so a success of an earlier term does not hide a stall."""
    entered = asyncio.Event()

    async def hangs() -> None:
        entered.set()
        await asyncio.Event().wait()

    loop = PeriodicLoop("metrics", hangs, interval=60)
    assert loop.stats.to_dict()["started"] is None
    before = datetime.now(UTC)
    task = asyncio.create_task(loop.run())
    await entered.wait()
    reported = loop.stats.to_dict()
    assert reported["running"] is True
    assert reported["runs"] == 0
    assert reported["last_success"] is None
    first_term = datetime.fromisoformat(reported["started"])
    assert before <= first_term <= datetime.now(UTC)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert loop.stats.running is False

    entered.clear()
    loop.stats.started = first_term - timedelta(hours=2)  # as if the first term had been long ago
    task = asyncio.create_task(loop.run())  # leading again
    await entered.wait()
    assert loop.stats.started is not None
    assert loop.stats.started >= first_term
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
