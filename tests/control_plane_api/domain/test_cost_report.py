"""The cost report's sums: clipping to the window, the 60 s minimum, pro rata attribution to sessions and the
idle remainder, savings of idle pauses and scale-downs, unpriced workers, the buckets, and the counters'
amounts. Without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.cost_ledger import HoldingInterval, WorkerInterval
from control_plane_api.domain.cost_report import (
    Bucket,
    GroupBy,
    Window,
    cost_report,
    lifetime_amounts,
    window_problem,
)

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
RATE = 4.8
EBS = 0.06


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def running(start: float, end: float | None, worker: str = "w1", **changes: object) -> WorkerInterval:
    values: dict[str, object] = {
        "id": f"{worker}:{start}", "worker_id": worker, "worker_name": f"name-{worker}", "pool_id": "p1",
        "pool_name": "ccna-pool", "state": "running", "start": at(start), "end": None if end is None else at(end),
        "priced": True, "cost_per_hour_usd": RATE, "ebs_cost_per_hour_usd": EBS, "declared_cpu_cores": 48,
        "declared_memory_gb": 192}
    values.update(changes)
    return WorkerInterval.model_validate(values)


def stopped(start: float, end: float | None, reason: str, worker: str = "w1", **changes: object) -> WorkerInterval:
    return running(start, end, worker, state="stopped", stop_reason=reason, **changes)


def holding(session: str, start: float, end: float | None, cores: float, track: str | None = "ccna",
            definition: str = "d1", worker: str = "w1", memory: float = 0) -> HoldingInterval:
    return HoldingInterval(id=f"{session}:{start}", session_id=session, worker_id=worker, lab_track=track,
                           definition_id=definition, definition_name=f"def-{definition}", cpu_cores=cores,
                           memory_gb=memory, start=at(start), end=None if end is None else at(end))


def hourly(start: float, end: float) -> Window:
    return Window(at(start), at(end), 3600)


def test_a_running_interval_is_clipped_to_the_window_and_spread_over_its_hours() -> None:
    report = cost_report([running(0, 4)], [], hourly(1.5, 3), GroupBy.POOL, now=at(10))
    [pool] = report.groups
    assert (pool.key, pool.name) == ("p1", "ccna-pool")
    assert pool.running_usd == pytest.approx(RATE * 1.5)
    assert pool.running_hours == pytest.approx(1.5)
    assert pool.series == pytest.approx([RATE * 0.5, RATE])  # the 09:00 bucket counts from 09:30 only
    assert report.window.buckets() == [at(1), at(2)]


def test_nothing_is_counted_after_now_an_open_interval_ends_now() -> None:
    report = cost_report([running(0, None)], [], hourly(0, 6), GroupBy.WORKER, now=at(2.5))
    [worker] = report.groups
    assert (worker.key, worker.name) == ("w1", "name-w1")
    assert worker.running_usd == pytest.approx(RATE * 2.5)
    assert worker.series == pytest.approx([RATE, RATE, RATE / 2, 0, 0, 0])


@pytest.mark.parametrize(("seconds", "window_start", "billed"), [
    (20, 0, 60),  # started in the window: at least a minute
    (90, 0, 90),
    (20, 5 / 3600, 15),  # started before the window: only what lies inside
])
def test_each_start_is_billed_at_least_sixty_seconds(seconds: float, window_start: float, billed: float) -> None:
    report = cost_report([running(0, seconds / 3600)], [], hourly(window_start, 1), GroupBy.POOL, now=at(5))
    assert report.groups[0].running_usd == pytest.approx(RATE * billed / 3600)
    assert report.groups[0].running_hours == pytest.approx(billed / 3600)


def test_a_stopped_interval_costs_its_ebs_and_an_idle_pause_saves_running_less_ebs() -> None:
    report = cost_report([running(0, 1), stopped(1, None, "idle_pause")], [], hourly(0, 5), GroupBy.POOL,
                         now=at(3))
    [pool] = report.groups
    assert pool.running_usd == pytest.approx(RATE)
    assert pool.stopped_usd == pytest.approx(EBS * 2)
    assert pool.stopped_hours == pytest.approx(2)
    assert pool.savings_idle_pause_usd == pytest.approx((RATE - EBS) * 2)
    assert pool.savings_scale_down_usd == 0
    assert pool.series == pytest.approx([RATE, EBS, EBS, 0, 0])  # savings are not cost


def test_savings_last_until_the_worker_runs_again_and_an_operator_stop_saves_nothing() -> None:
    intervals = [stopped(0, 2, "scale_down"), running(2, 3), stopped(3, 4, "operator"), stopped(4, 5, "other")]
    report = cost_report(intervals, [], hourly(0, 6), GroupBy.POOL, now=at(10))
    [pool] = report.groups
    assert pool.savings_scale_down_usd == pytest.approx((RATE - EBS) * 2)
    assert pool.savings_idle_pause_usd == 0
    assert pool.stopped_usd == pytest.approx(EBS * 4)


@pytest.mark.parametrize(("window_end", "now", "saved_hours"), [
    (40, 50, 24),  # a day after the termination, no more
    (12, 50, 10),  # the window ends first
    (40, 5, 3),  # nothing after now
])
def test_a_worker_terminated_by_a_scale_down_saves_its_running_price_for_at_most_a_day(
        window_end: float, now: float, saved_hours: float) -> None:
    retired = running(0, 2, terminated_reason="scale_down")
    report = cost_report([retired], [], Window(at(1), at(window_end), 86400), GroupBy.POOL, now=at(now))
    assert report.groups[0].savings_scale_down_usd == pytest.approx(RATE * saved_hours)
    assert report.groups[0].running_usd == pytest.approx(RATE)


def test_an_operator_termination_saves_nothing() -> None:
    report = cost_report([running(0, 2, terminated_reason="operator")], [], hourly(0, 10), GroupBy.POOL, now=at(20))
    assert report.groups[0].savings_scale_down_usd == 0


def attribution() -> tuple[list[WorkerInterval], list[HoldingInterval]]:
    """A 48-core worker running 08:00-10:00; a 12-core session 08:00-09:00 (ccna, d1) and a 24-core one
    08:30-open (ccnp, d2); stopped by idle pause 10:00-11:00."""
    return ([running(0, 2), stopped(2, 3, "idle_pause")],
            [holding("s1", 0, 1, 12, "ccna", "d1"), holding("s2", 0.5, None, 24, "ccnp", "d2")])


def test_by_track_a_running_worker_is_shared_pro_rata_of_the_cores_and_the_rest_is_idle() -> None:
    intervals, holdings = attribution()
    report = cost_report(intervals, holdings, hourly(0, 3), GroupBy.TRACK, now=at(5))
    groups = {g.key: g for g in report.groups}
    ccna, ccnp = RATE * 12 / 48 * 1, RATE * 24 / 48 * 1.5
    assert groups["ccna"].running_usd == pytest.approx(ccna)
    assert groups["ccnp"].running_usd == pytest.approx(ccnp)
    assert groups["ccnp"].running_hours == pytest.approx(0.5 * 1.5)
    idle = RATE * 2 - ccna - ccnp
    assert groups["idle"].running_usd == pytest.approx(idle)
    assert groups["idle"].stopped_usd == pytest.approx(EBS)
    assert groups["idle"].savings_idle_pause_usd == pytest.approx(RATE - EBS)
    assert report.idle_usd == pytest.approx(idle)
    assert groups["ccna"].series == pytest.approx([ccna, 0, 0])
    assert groups["ccnp"].series == pytest.approx([RATE * 0.5 * 0.5, RATE * 0.5, 0])
    assert sum(g.total_usd for g in report.groups) == pytest.approx(RATE * 2 + EBS)
    assert [g.key for g in report.groups] == ["idle", "ccnp", "ccna"]  # most first


def test_by_definition_the_keys_are_definition_ids_with_their_names() -> None:
    intervals, holdings = attribution()
    report = cost_report(intervals, holdings, hourly(0, 3), GroupBy.DEFINITION, now=at(5))
    groups = {g.key: g for g in report.groups}
    assert groups["d1"].name == "def-d1"
    assert groups["d2"].running_usd == pytest.approx(RATE * 24 / 48 * 1.5)


def test_by_pool_the_idle_total_is_what_no_session_held_and_the_pool_holds_it_all() -> None:
    intervals, holdings = attribution()
    report = cost_report(intervals, holdings, hourly(0, 3), GroupBy.POOL, now=at(5))
    [pool] = report.groups
    assert pool.running_usd == pytest.approx(RATE * 2)
    assert report.idle_usd == pytest.approx(RATE * 2 - RATE * 12 / 48 - RATE * 24 / 48 * 1.5)
    assert report.totals()["idle_usd"] == round(report.idle_usd, 4)


def test_memory_shares_when_the_worker_declares_no_cores_and_over_allocation_is_scaled_to_the_whole() -> None:
    no_cores = running(0, 1, declared_cpu_cores=0, declared_memory_gb=100)
    report = cost_report([no_cores], [holding("s1", 0, 1, 0, memory=25)], hourly(0, 1), GroupBy.TRACK, now=at(2))
    assert {g.key: g.running_usd for g in report.groups} == pytest.approx({"ccna": RATE / 4, "idle": RATE * 3 / 4})
    crowded = [holding("s1", 0, 1, 48, "a"), holding("s2", 0, 1, 48, "b")]
    report = cost_report([running(0, 1)], crowded, hourly(0, 1), GroupBy.TRACK, now=at(2))
    assert {g.key: g.running_usd for g in report.groups} == pytest.approx({"a": RATE / 2, "b": RATE / 2, "idle": 0})


def test_a_session_without_a_track_goes_to_none_and_the_minimum_of_a_start_to_idle() -> None:
    report = cost_report([running(0, 10 / 3600)], [holding("s1", 0, None, 48, None)], hourly(0, 1),
                         GroupBy.TRACK, now=at(2))
    groups = {g.key: g for g in report.groups}
    assert groups["none"].running_usd == pytest.approx(RATE * 10 / 3600)
    assert groups["idle"].running_usd == pytest.approx(RATE * 50 / 3600)


def test_an_unpriced_worker_costs_nothing_and_says_so() -> None:
    free = running(0, 2, worker="w2", pool_id=None, pool_name=None, priced=False, cost_per_hour_usd=0,
                   ebs_cost_per_hour_usd=0)
    report = cost_report([running(0, 1), free], [], hourly(0, 2), GroupBy.POOL, now=at(3))
    groups = {g.key: g for g in report.groups}
    assert groups["none"].running_usd == 0
    assert groups["none"].running_hours == pytest.approx(2)
    assert groups["none"].priced is False
    assert groups["p1"].priced is True
    assert [g.key for g in report.groups] == ["p1", "none"]


def test_the_totals_are_the_sums_of_the_groups_rounded_to_four_decimals() -> None:
    report = cost_report([running(0, 1), running(0, 1 / 3, worker="w2", pool_id="p2", pool_name="other")],
                         [], hourly(0, 1), GroupBy.POOL, now=at(2))
    totals = report.totals()
    assert totals["running_usd"] == round(RATE + RATE / 3, 4)
    assert totals["total_usd"] == totals["running_usd"] + totals["stopped_usd"]
    assert totals["running_hours"] == round(1 + 1 / 3, 4)


@pytest.mark.parametrize(("start", "end", "bucket", "problem"), [
    (at(0), at(0), Bucket.HOUR, "to must be after from"),
    (at(1), at(0), Bucket.HOUR, "to must be after from"),
    (at(0), at(0) + timedelta(days=367), Bucket.DAY, "at most 366 days"),
    (at(0), at(0) + timedelta(days=100), Bucket.HOUR, "at most 2000"),
    (datetime(2026, 1, 1), at(0), Bucket.HOUR, "time zone"),
])
def test_windows_that_are_refused(start: datetime, end: datetime, bucket: Bucket, problem: str) -> None:
    found = window_problem(start, end, bucket)
    assert found is not None
    assert problem in found


def test_the_largest_windows_allowed() -> None:
    assert window_problem(at(0), at(0) + timedelta(days=366), Bucket.DAY) is None
    assert window_problem(at(0), at(0) + timedelta(hours=1999), Bucket.HOUR) is None


def test_the_counters_amounts_never_decrease_and_settle_at_the_final_value() -> None:
    intervals = [running(0, None), stopped(0, 2, "idle_pause"), running(0, 1, terminated_reason="scale_down")]
    for interval in intervals:
        seen = [lifetime_amounts(interval, at(h)) for h in (0, 0.01, 0.5, 1, 2, 10, 30, 40)]
        for field in ("running_usd", "stopped_usd", "savings_idle_pause_usd", "savings_scale_down_usd"):
            values = [getattr(a, field) for a in seen]
            assert values == sorted(values), (interval.id, field)
    assert lifetime_amounts(intervals[0], at(0)).running_usd == pytest.approx(RATE / 60)  # the minute at once
    idle = lifetime_amounts(intervals[1], at(10))
    assert (idle.stopped_usd, idle.savings_idle_pause_usd) == pytest.approx((EBS * 2, (RATE - EBS) * 2))
    assert lifetime_amounts(intervals[2], at(100)).savings_scale_down_usd == pytest.approx(RATE * 24)
