"""Which controller replica the status page shows leading, and which are stale: the etcd holder leads, a
replica silent for more than two report intervals is stale and never leads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from control_plane_api.domain.controller_status import (
    DEFAULT_REPORT_INTERVAL_SECONDS,
    MIN_STALE_AFTER_SECONDS,
    KeyHolder,
    StoredReport,
    judge_service,
    stale_after,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def report(identity: str, age: float, *, leads: bool = False, epoch: int | None = None,
           interval: float | None = 15.0) -> StoredReport:
    body: dict[str, Any] = {"service": "worker-controller", "identity": identity, "is_leader": leads,
                            "epoch": epoch}
    if interval is not None:
        body["report_interval_seconds"] = interval
    return StoredReport("worker-controller", identity, body, NOW - timedelta(seconds=age))


@pytest.mark.parametrize(("stored", "holder", "stale", "shown_leading", "reason"), [
    # The holder, reporting on time, leads.
    (report("a", 5, leads=True, epoch=7), KeyHolder("a", 7), False, True, "holds the election key (epoch 7)"),
    # kill -9: its last report still says it leads, another replica holds the key now.
    (report("a", 40, leads=True, epoch=7), KeyHolder("b", 9), True, False, "no report for 40s"),
    # Silent for just over two intervals: stale, even though it still holds the key (a frozen leader).
    (report("a", 31, leads=True, epoch=7), KeyHolder("a", 7), True, False, "still holds the election key"),
    # Exactly two intervals: not yet.
    (report("a", 30, leads=True, epoch=7), KeyHolder("a", 7), False, True, "holds the election key"),
    # Live, but claims a term it no longer has: a follower, with the reason.
    (report("a", 1, leads=True, epoch=7), KeyHolder("b", 9), False, False,
     "reported leading, but the election key is held by b (epoch 9)"),
    (report("a", 1, leads=True, epoch=7), None, False, False, "the election key is not held by anyone"),
    # Holds the key before its first report as leader went out: the key decides.
    (report("a", 1, leads=False), KeyHolder("a", 9), False, True, "holds the election key (epoch 9)"),
    (report("b", 1), KeyHolder("a", 9), False, False, "follower"),
    # A replica that does not say its interval: the controllers' default.
    (report("a", 31, interval=None), None, True, False, "stale after 30s"),
    (report("a", 29, interval=None), None, False, False, "follower"),
    # A fast reporter is judged on its own interval, with a floor for the report's own travel time.
    (report("a", 2.5, interval=0.3), None, True, False, "stale after 2s"),
    (report("a", 1.5, interval=0.3), None, False, False, "follower"),
])
def test_each_replica_as_shown(stored: StoredReport, holder: KeyHolder | None, stale: bool, shown_leading: bool,
                               reason: str) -> None:
    [(_, shown)] = judge_service([stored], holder, NOW).replicas
    assert (shown.stale, shown.is_leader) == (stale, shown_leading)
    assert reason in shown.reason


def test_stale_after_is_two_intervals_with_a_floor() -> None:
    assert stale_after({"report_interval_seconds": 15}) == 30
    assert stale_after({}) == 2 * DEFAULT_REPORT_INTERVAL_SECONDS
    assert stale_after({"report_interval_seconds": 0}) == 2 * DEFAULT_REPORT_INTERVAL_SECONDS
    assert stale_after({"report_interval_seconds": True}) == 2 * DEFAULT_REPORT_INTERVAL_SECONDS
    assert stale_after({"report_interval_seconds": 0.1}) == MIN_STALE_AFTER_SECONDS


def test_a_killed_leader_is_not_shown_beside_the_real_one() -> None:
    killed = report("wc-1", 45, leads=True, epoch=7)
    successor = report("wc-2", 2, leads=True, epoch=12)
    shown = judge_service([killed, successor], KeyHolder("wc-2", 12), NOW)
    assert (shown.leader, shown.leader_epoch) == ("wc-2", 12)
    assert [(s.identity, r.is_leader, r.stale) for s, r in shown.replicas] == [("wc-1", False, True),
                                                                               ("wc-2", True, False)]


def test_the_holder_is_the_leader_even_before_it_reports() -> None:
    shown = judge_service([report("wc-1", 60, leads=True, epoch=7)], KeyHolder("wc-2", 12), NOW)
    assert (shown.leader, shown.leader_epoch) == ("wc-2", 12)
    assert not any(r.is_leader for _, r in shown.replicas)
    assert judge_service([], None, NOW).leader is None


def test_without_etcd_the_live_claimant_of_the_latest_term_is_believed() -> None:
    reports = [report("wc-1", 1, leads=True, epoch=7), report("wc-2", 1, leads=True, epoch=12),
               report("wc-3", 90, leads=True, epoch=15)]  # the latest claim, but stale
    shown = judge_service(reports, None, NOW, etcd_known=False)
    assert (shown.leader, shown.leader_epoch) == ("wc-2", 12)
    by_id = {s.identity: r for s, r in shown.replicas}
    assert [by_id[i].is_leader for i in ("wc-1", "wc-2", "wc-3")] == [False, True, False]
    assert "wc-2 reported a later term" in by_id["wc-1"].reason
    assert "unverified" in by_id["wc-2"].reason
    assert by_id["wc-3"].stale
    nobody = judge_service([report("wc-1", 1)], None, NOW, etcd_known=False)
    assert (nobody.leader, nobody.replicas[0][1].reason) == (None, "follower")
